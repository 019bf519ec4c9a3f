"""The asyncio client: :class:`AsyncSandbox` and its HTTP transport. Same surface as
:class:`warren.Sandbox`, with coroutines."""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from types import TracebackType
from typing import (Any, AsyncIterator, Awaitable, Callable, Dict, Generator, List, Mapping, Optional, Sequence,
                    Type, Union)

import httpx

from . import _errors as E
from . import _routes as R
from ._config import Config, resolve_config
from ._http import USER_AGENT, Body, SSEDecoder, SSEEvent, error_from_response, httpx_timeout, nodelay, retry_delay, transport_error
from ._shared import (CodeStream, LimitsArg, NetworkArg, context_id, create_body, fork_body, host, list_params,
                      run_code_body, sandbox_domain, seconds, set_network_body, snapshot_params)
from .models import (CONTEXT_LIST, FORK_LIST, PORT_LIST, TEMPLATE_LIST, CodeContext, Execution, ExecutionError,
                     OutputMessage, PortInfo, Result, SandboxInfo, SandboxPage, SnapshotInfo, SnapshotPage, Template)

log = logging.getLogger("warren")

__all__ = ["AsyncSandbox"]


async def call(cb: Optional[Callable[[Any], Any]], arg: Any) -> None:
    """Call a callback that may be a plain function or a coroutine function."""
    if cb is None:
        return
    res = cb(arg)
    if inspect.isawaitable(res):
        await res


class AsyncHTTP:
    """One async connection pool to one server, with the SDK's retry policy."""

    def __init__(self, cfg: Config, client: Optional[httpx.AsyncClient] = None) -> None:
        self.cfg = cfg
        headers = {"Authorization": f"Bearer {cfg.api_key}", "User-Agent": USER_AGENT, **cfg.headers}
        self._own = client is None
        self.client = client or httpx.AsyncClient(base_url=cfg.api_url, headers=headers, timeout=httpx_timeout(cfg))
        if not self._own:
            self.client.headers.update(headers)

    async def close(self) -> None:
        """Close the connection pool (if this object created it)."""
        if self._own:
            await self.client.aclose()

    async def send(
        self, route: R.Route, path: Optional[Mapping[str, str]] = None, *, json: Any = None,
        params: Optional[Mapping[str, Any]] = None, body: Body = None, replayable: bool = True,
        headers: Optional[Mapping[str, str]] = None, stream: bool = False,
    ) -> httpx.Response:
        """Like :meth:`warren._sync.SyncHTTP.send`; body callables may return async
        iterables."""
        url = route.url(**(path or {}))
        if self.client.is_closed:
            raise E.WarrenError("this client was closed (close() or the end of a with block); "
                                "attach again with connect(sandbox_id)")
        attempt = 0
        while True:
            content = body() if callable(body) else body
            req = self.client.build_request(route.method, url, json=json, params=params, content=content,
                                            headers=headers)
            try:
                resp = await self.client.send(req, stream=True)
            except httpx.HTTPError as err:
                raise transport_error(err, f"{route.method} {url}") from err
            nodelay(resp)
            if resp.status_code < 400:
                if not stream:
                    try:
                        await resp.aread()
                    except httpx.HTTPError as err:
                        raise transport_error(err, f"{route.method} {url}") from err
                    finally:
                        await resp.aclose()
                return resp
            try:
                raw = await resp.aread()
            except httpx.HTTPError:
                raw = b""
            finally:
                await resp.aclose()
            api_err = error_from_response(resp.status_code, resp.headers, raw)
            delay = retry_delay(api_err, attempt, self.cfg) if replayable else None
            if delay is None:
                raise api_err
            log.info("warren: %s %s answered %d (%s); retry %d of %d in %.2fs",
                     route.method, url, resp.status_code, api_err.code, attempt + 1, self.cfg.max_retries, delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def json(self, route: R.Route, path: Optional[Mapping[str, str]] = None, **kw: Any) -> Any:
        """send() and decode the JSON answer."""
        return (await self.send(route, path, **kw)).json()

    async def events(self, resp: httpx.Response, what: str) -> AsyncIterator[SSEEvent]:
        """The Server-Sent Events of a streamed answer, as they arrive."""
        dec = SSEDecoder()
        try:
            async for chunk in resp.aiter_raw():
                for ev in dec.feed(chunk):
                    yield ev
        except httpx.HTTPError as err:
            raise transport_error(err, what) from err
        for ev in dec.flush():
            yield ev


class _Creation:
    """What :meth:`AsyncSandbox.create` returns: await it for the sandbox, or use it with
    ``async with`` to kill the sandbox on exit."""

    def __init__(self, coro: Awaitable["AsyncSandbox"]) -> None:
        self._coro = coro
        self._sbx: Optional[AsyncSandbox] = None

    def __await__(self) -> Generator[Any, None, "AsyncSandbox"]:
        return self._coro.__await__()

    async def __aenter__(self) -> "AsyncSandbox":
        self._sbx = await self._coro
        return self._sbx

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        assert self._sbx is not None
        await self._sbx.__aexit__(exc_type, exc, tb)


class AsyncSandbox:
    """A running sandbox, for asyncio. ``await AsyncSandbox.create(...)`` starts one;
    ``async with AsyncSandbox.create(...) as sbx:`` also kills it on exit.

    Attributes:
        commands: Run commands (:class:`~warren._async_commands.AsyncCommands`).
        files: Read and write files (:class:`~warren._async_files.AsyncFiles`).
    """

    def __init__(self, info: SandboxInfo, http: AsyncHTTP) -> None:
        """Use :meth:`create` or :meth:`connect` instead."""
        from ._async_commands import AsyncCommands
        from ._async_files import AsyncFiles

        self._info = info
        self._http = http
        self._handles: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._killing = False  # kill() was called (and did not fail)
        self.commands = AsyncCommands(self)
        self.files = AsyncFiles(self)

    @staticmethod
    def _http_for(config: Optional[Config], api_url: Optional[str], api_key: Optional[str], domain: Optional[str],
                  request_timeout: Optional[float], max_retries: Optional[int]) -> AsyncHTTP:
        if config is None:
            config = resolve_config(api_url, api_key, domain=domain, request_timeout=request_timeout,
                                    max_retries=max_retries)
        return AsyncHTTP(config)

    @classmethod
    def create(
        cls,
        template: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        metadata: Optional[Mapping[str, str]] = None,
        limits: LimitsArg = None,
        internet: Optional[bool] = None,
        runtime: Optional[str] = None,
        min_isolation: Optional[str] = None,
        snapshot: Optional[str] = None,
        on_timeout: Optional[str] = None,
        auto_resume: Optional[bool] = None,
        network: NetworkArg = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        domain: Optional[str] = None,
        request_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        config: Optional[Config] = None,
    ) -> _Creation:
        """Start a sandbox; see :meth:`warren.Sandbox.create` for the arguments. Await the
        result, or use it with ``async with``."""
        async def go() -> AsyncSandbox:
            http = cls._http_for(config, api_url, api_key, domain, request_timeout, max_retries)
            try:
                body = create_body(template, timeout, env, metadata, limits, internet, runtime, min_isolation,
                                   snapshot, on_timeout, auto_resume, network)
                data = await http.json(R.CREATE_SANDBOX, json=body)
            except BaseException:
                await http.close()
                raise
            return cls(SandboxInfo.from_json(data), http)

        return _Creation(go())

    @classmethod
    async def connect(
        cls,
        sandbox_id: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        domain: Optional[str] = None,
        request_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        config: Optional[Config] = None,
    ) -> "AsyncSandbox":
        """Attach to an existing sandbox of the team.

        Raises:
            NotFoundError: No sandbox of the team has this id.
        """
        http = cls._http_for(config, api_url, api_key, domain, request_timeout, max_retries)
        try:
            data = await http.json(R.GET_SANDBOX, {"id": sandbox_id})
        except BaseException:
            await http.close()
            raise
        return cls(SandboxInfo.from_json(data), http)

    @classmethod
    async def list(
        cls,
        *,
        state: Union[str, Sequence[str], None] = None,
        metadata: Optional[Mapping[str, str]] = None,
        limit: Optional[int] = None,
        page_size: int = 100,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        config: Optional[Config] = None,
    ) -> List[SandboxInfo]:
        """The team's sandboxes, newest first; see :meth:`warren.Sandbox.list`."""
        http = cls._http_for(config, api_url, api_key, None, request_timeout, max_retries)
        out: List[SandboxInfo] = []
        cursor: Optional[str] = None
        try:
            while limit is None or len(out) < limit:
                size = page_size if limit is None else min(page_size, limit - len(out))
                data = await http.json(R.LIST_SANDBOXES, params=list_params(state, metadata, size, cursor))
                page = SandboxPage.from_json(data)
                out.extend(page.sandboxes)
                if not page.next_cursor or not page.sandboxes:
                    break
                cursor = page.next_cursor
        finally:
            await http.close()
        return out if limit is None else out[:limit]

    @classmethod
    async def templates(
        cls, *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[Config] = None,
    ) -> List[Template]:
        """The server's templates and whether each is ready."""
        http = cls._http_for(config, api_url, api_key, None, None, None)
        try:
            templates: List[Template] = TEMPLATE_LIST.read(await http.json(R.LIST_TEMPLATES))["templates"]
            return templates
        finally:
            await http.close()

    @classmethod
    async def list_snapshots(
        cls,
        *,
        sandbox_id: Optional[str] = None,
        limit: Optional[int] = None,
        page_size: int = 100,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[Config] = None,
    ) -> List[SnapshotInfo]:
        """The team's snapshots, newest first; see :meth:`warren.Sandbox.list_snapshots`."""
        http = cls._http_for(config, api_url, api_key, None, None, None)
        out: List[SnapshotInfo] = []
        cursor: Optional[str] = None
        try:
            while limit is None or len(out) < limit:
                size = page_size if limit is None else min(page_size, limit - len(out))
                data = await http.json(R.LIST_SNAPSHOTS, params=snapshot_params(sandbox_id, size, cursor))
                page = SnapshotPage.from_json(data)
                out.extend(page.snapshots)
                if not page.next_cursor or not page.snapshots:
                    break
                cursor = page.next_cursor
        finally:
            await http.close()
        return out if limit is None else out[:limit]

    @classmethod
    async def get_snapshot(
        cls, snapshot: str, *, api_url: Optional[str] = None, api_key: Optional[str] = None,
        config: Optional[Config] = None,
    ) -> SnapshotInfo:
        """One of the team's snapshots, by id or name."""
        http = cls._http_for(config, api_url, api_key, None, None, None)
        try:
            return SnapshotInfo.from_json(await http.json(R.GET_SNAPSHOT, {"id": snapshot}))
        finally:
            await http.close()

    @classmethod
    async def delete_snapshot(
        cls, snapshot: str, *, api_url: Optional[str] = None, api_key: Optional[str] = None,
        config: Optional[Config] = None,
    ) -> bool:
        """Delete one of the team's snapshots (by id or name); see
        :meth:`warren.Sandbox.delete_snapshot`. Returns False if there was no such snapshot."""
        http = cls._http_for(config, api_url, api_key, None, None, None)
        try:
            await http.send(R.DELETE_SNAPSHOT, {"id": snapshot})
            return True
        except E.NotFoundError:
            return False
        finally:
            await http.close()

    @property
    def sandbox_id(self) -> str:
        """The sandbox's id."""
        return self._info.sandbox_id

    @property
    def id(self) -> str:
        """The sandbox's id (same as sandbox_id)."""
        return self._info.sandbox_id

    @property
    def info(self) -> SandboxInfo:
        """What the API last said about the sandbox (see :meth:`get_info` to refresh)."""
        return self._info

    @property
    def config(self) -> Config:
        """The client configuration in use."""
        return self._http.cfg

    async def get_info(self) -> SandboxInfo:
        """Fetch the sandbox's current description."""
        self._info = SandboxInfo.from_json(await self._http.json(R.GET_SANDBOX, {"id": self.id}))
        return self._info

    async def is_running(self) -> bool:
        """Whether the sandbox is still running (asks the server)."""
        try:
            return (await self.get_info()).is_running
        except E.NotFoundError:
            return False

    async def set_timeout(self, timeout: float) -> SandboxInfo:
        """Stop the sandbox ``timeout`` seconds from now (instead of its current end)."""
        body = R.SET_TIMEOUT.body(timeout=seconds(timeout, "timeout"))
        self._info = SandboxInfo.from_json(await self._http.json(R.SET_TIMEOUT, {"id": self.id}, json=body))
        return self._info

    async def set_network(self, allow_out: Optional[Sequence[str]] = None,
                          deny_out: Optional[Sequence[str]] = None) -> SandboxInfo:
        """Replace the sandbox's egress policy (no arguments clear it); see
        :meth:`warren.Sandbox.set_network`."""
        body = set_network_body(allow_out, deny_out)
        self._info = SandboxInfo.from_json(await self._http.json(R.SET_NETWORK, {"id": self.id}, json=body))
        return self._info

    async def pause(self) -> SandboxInfo:
        """Save the sandbox's memory, files and processes and stop it; see
        :meth:`warren.Sandbox.pause`."""
        self._info = SandboxInfo.from_json(await self._http.json(R.PAUSE_SANDBOX, {"id": self.id}))
        return self._info

    async def resume(self, timeout: Optional[float] = None) -> SandboxInfo:
        """Start a paused sandbox again where it was; see :meth:`warren.Sandbox.resume`."""
        body = R.RESUME_SANDBOX.body(timeout=seconds(timeout, "timeout"))
        self._info = SandboxInfo.from_json(await self._http.json(R.RESUME_SANDBOX, {"id": self.id}, json=body))
        return self._info

    async def fork(self, count: int = 1, *, timeout: Optional[float] = None) -> List["AsyncSandbox"]:
        """Start ``count`` (1 to 20) copies of this running sandbox; see
        :meth:`warren.Sandbox.fork`. Each copy has its own connections: close (or kill)
        it when done."""
        data = await self._http.json(R.FORK_SANDBOX, {"id": self.id}, json=fork_body(count, timeout))
        got = FORK_LIST.read(data)
        forks = [AsyncSandbox(info, AsyncHTTP(self._http.cfg)) for info in got["sandboxes"]]
        if got["errors"]:
            raise E.ForkError(forks, got["errors"])
        return forks

    async def create_snapshot(self, name: Optional[str] = None) -> SnapshotInfo:
        """Save this running sandbox as a snapshot; see :meth:`warren.Sandbox.create_snapshot`."""
        data = await self._http.json(R.CREATE_SNAPSHOT, {"id": self.id}, json=R.CREATE_SNAPSHOT.body(name=name))
        return SnapshotInfo.from_json(data)

    async def kill(self) -> bool:
        """Stop the sandbox now. Returns True if it was running, False if it was already
        gone. Commands this client follows end with SandboxKilledError."""
        # While the kill is under way, the server ends this client's command streams with
        # a conflict; the handles report that as SandboxKilledError (see killed_error).
        self._killing = True
        try:
            await self._http.send(R.KILL_SANDBOX, {"id": self.id})
            killed = True
        except E.NotFoundError:
            killed = False
        except BaseException:
            self._killing = False
            raise
        for h in list(self._handles):
            h._abort(E.SandboxKilledError(f"sandbox {self.id} was killed"))
        return killed

    def get_host(self, port: int) -> str:
        """The host name that reaches ``port`` in this sandbox through Warren's proxy:
        ``<port>-<sandbox id>.<domain>``; see :meth:`warren.Sandbox.get_host`."""
        return host(port, self.id, sandbox_domain(self._http.cfg.domain, self._info))

    async def list_ports(self) -> List[PortInfo]:
        """The TCP ports listening in the sandbox, with their URLs through the proxy."""
        ports: List[PortInfo] = PORT_LIST.read(await self._http.json(R.LIST_PORTS, {"id": self.id}))["ports"]
        return ports

    async def run_code(
        self,
        code: str,
        *,
        language: Optional[str] = None,
        context: Union[CodeContext, str, None] = None,
        on_stdout: Optional[Callable[[OutputMessage], Any]] = None,
        on_stderr: Optional[Callable[[OutputMessage], Any]] = None,
        on_result: Optional[Callable[[Result], Any]] = None,
        on_error: Optional[Callable[[ExecutionError], Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Execution:
        """Run a cell in the sandbox's code interpreter; see :meth:`warren.Sandbox.run_code`.
        Callbacks may be coroutine functions."""
        body = run_code_body(code, language, context, env, timeout)
        what = f"run_code in sandbox {self.id}"
        resp = await self._http.send(R.RUN_CODE, {"id": self.id}, json=body,
                                     headers={"Accept": "text/event-stream"}, stream=True)
        st = CodeStream()
        callbacks: Dict[str, Any] = {"stdout": on_stdout, "stderr": on_stderr, "result": on_result, "error": on_error}
        try:
            async for ev in self._http.events(resp, what):
                if st.done:
                    continue  # read to the close so that the connection is reused
                out = st.apply(ev)
                if out is not None:
                    await call(callbacks.get(out[0]), out[1])
        finally:
            await resp.aclose()
        if not st.done:
            raise E.ConnectionError(f"{what}: the stream ended before the execution did")
        return st.execution

    async def create_code_context(self, language: Optional[str] = None, cwd: Optional[str] = None) -> CodeContext:
        """Create a code interpreter context with its own state."""
        data = await self._http.json(R.CREATE_CONTEXT, {"id": self.id},
                                     json=R.CREATE_CONTEXT.body(language=language, cwd=cwd))
        return CodeContext.from_json(data)

    async def list_code_contexts(self) -> List[CodeContext]:
        """The sandbox's code interpreter contexts."""
        contexts: List[CodeContext] = CONTEXT_LIST.read(
            await self._http.json(R.LIST_CONTEXTS, {"id": self.id}))["contexts"]
        return contexts

    async def restart_code_context(self, context: Union[CodeContext, str]) -> None:
        """Restart a context's interpreter: its state is lost."""
        await self._http.send(R.RESTART_CONTEXT, {"id": self.id, "context_id": context_id(context)})

    async def remove_code_context(self, context: Union[CodeContext, str]) -> None:
        """Delete a context."""
        await self._http.send(R.DELETE_CONTEXT, {"id": self.id, "context_id": context_id(context)})

    async def close(self) -> None:
        """Release the HTTP connections. The sandbox keeps running (see :meth:`kill`)."""
        for h in list(self._handles):
            await h.disconnect()
        await self._http.close()

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        try:
            await self.kill()
        except E.WarrenError:
            if exc_type is None:
                raise
            log.warning("warren: killing sandbox %s on exit failed", self.id, exc_info=True)
        finally:
            await self.close()

    def __repr__(self) -> str:
        return f"AsyncSandbox(id={self.id!r}, template={self._info.template!r}, state={self._info.state!r})"
