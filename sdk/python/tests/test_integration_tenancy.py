"""Quota, rate-limit and scope errors from a real server, with a team made for the test
through the tenancy API (POST /v1/teams, POST /v1/keys) using WARREN_TEST_ADMIN_KEY."""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest

import warren
from conftest import Live, need
from warren import AsyncSandbox, Sandbox

pytestmark = pytest.mark.integration


class Admin:
    """Raw calls to the tenancy API with the platform admin key."""

    def __init__(self, live: Live) -> None:
        self.c = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.admin_key}"}, timeout=30)

    def post(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        r = self.c.post(path, json=body)
        if r.status_code == 404 and "no route" in r.text:
            msg = f"the server has no {path} (tenancy API): {r.text.strip()}"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
        assert r.status_code == 201, f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    def team_key(self, quota: Dict[str, Any], scopes: Optional[List[str]] = None) -> str:
        team = self.post("/v1/teams", {"name": "sdk-py-" + secrets.token_hex(4), "quota": quota})
        body: Dict[str, Any] = {"name": "sdk-py", "team_id": team["id"]}
        if scopes is not None:
            body["scopes"] = scopes
        key = self.post("/v1/keys", body)["key"]
        assert key.startswith("sk_")
        return key


@pytest.fixture(scope="module")
def admin(live: Live) -> Iterator[Admin]:
    need("WARREN_TEST_ADMIN_KEY")
    a = Admin(live)
    yield a
    a.c.close()


def test_quota_exceeded(admin: Admin) -> None:
    key = admin.team_key({"max_sandboxes": 1})
    first = Sandbox.create(api_key=key, timeout=120)
    try:
        start = time.monotonic()
        with pytest.raises(warren.QuotaExceededError) as ei:
            Sandbox.create(api_key=key, timeout=120)
        e = ei.value
        assert (e.status, e.code, e.quota, e.limit, e.used) == (429, "quota_exceeded", "max_sandboxes", 1, 1)
        assert time.monotonic() - start < 2, "a quota refusal must not be retried"
    finally:
        first.kill()
        first.close()
    # The quota frees up once the sandbox is gone.
    with Sandbox.create(api_key=key, timeout=120) as again:
        assert again.info.state == "running"


def test_forbidden_scope(admin: Admin) -> None:
    key = admin.team_key({}, scopes=["sandboxes:read"])
    assert Sandbox.list(api_key=key) == []
    with pytest.raises(warren.ForbiddenError) as ei:
        Sandbox.create(api_key=key)
    assert ei.value.status == 403 and ei.value.code == "forbidden"


def exhaust(key: str, rpm: int) -> warren.RateLimitedError:
    """Spend the team's burst; return the first refusal."""
    for _ in range(rpm + 5):
        try:
            Sandbox.list(api_key=key, max_retries=0)
        except warren.RateLimitedError as e:
            return e
    raise AssertionError(f"no 429 after {rpm + 5} requests at requests_per_minute={rpm}")


def test_rate_limited_and_retry_after(admin: Admin, caplog: Any) -> None:
    rpm = 30
    key = admin.team_key({"requests_per_minute": rpm})
    e = exhaust(key, rpm)
    assert (e.status, e.code) == (429, "rate_limited")
    assert e.retry_after is not None and 1 <= e.retry_after <= 60

    # With retries, the SDK waits what Retry-After says and then succeeds.
    caplog.set_level(logging.INFO, logger="warren")
    start = time.monotonic()
    Sandbox.list(api_key=key, max_retries=3)
    elapsed = time.monotonic() - start
    waits = [float(m) for m in re.findall(r"in ([0-9.]+)s", caplog.text)]
    assert waits, "no retry was logged: " + caplog.text
    assert all(w >= 1 for w in waits) and elapsed >= sum(waits), (waits, elapsed)


async def test_rate_limited_async(admin: Admin, caplog: Any) -> None:
    rpm = 20
    key = admin.team_key({"requests_per_minute": rpm})
    exhaust(key, rpm)
    with pytest.raises(warren.RateLimitedError) as ei:
        await AsyncSandbox.list(api_key=key, max_retries=0)
    limited_at = time.monotonic()
    assert ei.value.retry_after is not None and ei.value.retry_after >= 1

    # With retries, the async client waits what each Retry-After it gets says, then
    # succeeds. (The bucket refills while the test runs: the waits are the ones this call
    # was told, not the earlier 429's.)
    caplog.set_level(logging.INFO, logger="warren")
    start = time.monotonic()
    await AsyncSandbox.list(api_key=key, max_retries=3)
    elapsed = time.monotonic() - start
    waits = [float(m) for m in re.findall(r"in ([0-9.]+)s", caplog.text)]
    if not waits:
        # No 429 this time: allowed only once the earlier one's Retry-After (whole
        # seconds, rounded up) had nearly passed, on a slow machine.
        assert start - limited_at >= ei.value.retry_after - 1, (start - limited_at, ei.value.retry_after)
    assert all(w >= 1 for w in waits) and elapsed >= sum(waits), (waits, elapsed)
