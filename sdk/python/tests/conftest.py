"""Fixtures: the stub server for unit tests, and the live server for integration tests.

Integration tests need WARREN_API_URL and WARREN_API_KEY (WARREN_PROXY_URL for
get_host, WARREN_TEST_ADMIN_KEY for the tenancy tests). Without them they are skipped,
except when CI is set: then a missing variable fails them, so that a broken CI setup
cannot pass by skipping.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional

import httpx
import pytest

if importlib.util.find_spec("warren") is None:
    # Not installed: test the source tree (python3 -m pytest sdk/python/tests from a checkout).
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stub import SANDBOX, Stub  # noqa: E402
from warren import AsyncSandbox, Sandbox, resolve_config  # noqa: E402
from warren._async import AsyncHTTP  # noqa: E402
from warren._sync import SyncHTTP  # noqa: E402
from warren.models import SandboxInfo  # noqa: E402


def pytest_report_header(config: Any) -> str:
    import warren

    return f"warren SDK {warren.__version__} from {os.path.dirname(warren.__file__)}; httpx {httpx.__version__}"


# --- unit tests ---------------------------------------------------------------------


@pytest.fixture
def stub() -> Iterator[Stub]:
    """A fresh stub server."""
    with Stub() as s:
        yield s


@pytest.fixture(params=["sync", "async"])
def mode(request: Any) -> str:
    """Run the test once with the sync client and once with the async one."""
    return request.param


def perform(mode: str, stub: Any, op: Callable[[Any], Any], info: Optional[Dict[str, Any]] = None, **cfg: Any) -> Any:
    """Run op(sandbox) against the stub with a Sandbox (sync) or an AsyncSandbox (async;
    op's result is awaited) for the sandbox stub.SANDBOX (or info). cfg overrides the config."""
    cfg.setdefault("backoff", 0.01)
    c = resolve_config(stub.url, "sk_test", **cfg)
    sinfo = SandboxInfo.from_json(info or SANDBOX)
    if mode == "sync":
        sbx = Sandbox(sinfo, SyncHTTP(c))
        try:
            return op(sbx)
        finally:
            sbx.close()

    async def go() -> Any:
        asbx = AsyncSandbox(sinfo, AsyncHTTP(c))
        try:
            r = op(asbx)
            return await r if inspect.isawaitable(r) else r
        finally:
            await asbx.close()

    return asyncio.run(go())


# --- integration tests --------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    """The server the integration tests use."""

    url: str
    key: str
    proxy_url: Optional[str]
    admin_key: Optional[str]

    def fetch(self, host: str, path: str = "/", timeout: float = 10.0) -> httpx.Response:
        """GET path on a sandbox host (from get_host) through the proxy. *.localhost
        names do not resolve everywhere, so with WARREN_PROXY_URL the request goes to the
        proxy with the host in the Host header, as a browser would send it."""
        if self.proxy_url:
            return httpx.get(self.proxy_url.rstrip("/") + path, headers={"Host": host}, timeout=timeout)
        return httpx.get(f"http://{host}{path}", timeout=timeout)


def need(*names: str) -> None:
    """Fail (in CI) or skip (elsewhere) unless the environment variables are set."""
    missing = [n for n in names if not os.environ.get(n)]
    if not missing:
        return
    msg = f"integration test needs {', '.join(missing)} (a running warren serve)"
    if os.environ.get("CI"):
        pytest.fail(msg + "; CI is set, so this is a failure, not a skip")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def live() -> Live:
    """The live server, from WARREN_API_URL, WARREN_API_KEY and WARREN_PROXY_URL."""
    need("WARREN_API_URL", "WARREN_API_KEY")
    return Live(os.environ["WARREN_API_URL"], os.environ["WARREN_API_KEY"],
                os.environ.get("WARREN_PROXY_URL") or None, os.environ.get("WARREN_TEST_ADMIN_KEY") or None)


@pytest.fixture(scope="module")
def sbx(live: Live) -> Iterator[Sandbox]:
    """A base sandbox shared by a module's tests."""
    s = Sandbox.create(template="base", timeout=900, metadata={"suite": "python-sdk"})
    try:
        yield s
    finally:
        s.kill()
        s.close()


@pytest.fixture(scope="module")
def ci_sbx(live: Live) -> Iterator[Sandbox]:
    """A code-interpreter sandbox shared by a module's tests."""
    s = Sandbox.create(template="code-interpreter", timeout=900, metadata={"suite": "python-sdk"})
    try:
        yield s
    finally:
        s.kill()
        s.close()


