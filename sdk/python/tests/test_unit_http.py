"""The HTTP layer against the stub server, with both clients: error mapping for each
failure class, retries on 429 and 503 only (honouring Retry-After), timeouts."""

from __future__ import annotations

import builtins
import json
import socket
import time
from typing import Any, Dict, Type

import pytest

import warren
from conftest import perform
from stub import SANDBOX, Reply, error


def get_info(s: Any) -> Any:
    return s.get_info()


ERROR_CASES = [
    # (name, reply, exception class, attributes to check)
    ("400 invalid", error(400, "invalid", "bad timeout", field="timeout"), warren.InvalidArgumentError,
     {"status": 400, "code": "invalid", "field": "timeout", "request_id": "req_test"}),
    ("401 unauthorized", error(401, "unauthorized", "invalid API key"), warren.AuthenticationError,
     {"status": 401, "code": "unauthorized"}),
    ("403 forbidden", error(403, "forbidden", "key lacks scope sandboxes:write"), warren.ForbiddenError,
     {"status": 403, "code": "forbidden"}),
    ("403 spending limit", error(403, "quota_exceeded", "spending limit reached", quota="spending_limit",
                                 limit=10, used=10.5), warren.QuotaExceededError,
     {"status": 403, "quota": "spending_limit", "limit": 10.0, "used": 10.5}),
    ("404 not found", error(404, "not_found", "sandbox not found"), warren.NotFoundError, {"status": 404}),
    ("409 conflict", error(409, "conflict", "sandbox is stopped"), warren.ConflictError, {"status": 409}),
    ("413 too large", error(413, "invalid", "body too large"), warren.InvalidArgumentError, {"status": 413}),
    ("429 quota", error(429, "quota_exceeded", "quota max_sandboxes exceeded", quota="max_sandboxes", limit=1,
                        used=1), warren.QuotaExceededError,
     {"status": 429, "code": "quota_exceeded", "quota": "max_sandboxes", "limit": 1.0, "used": 1.0}),
    ("429 rate limited", error(429, "rate_limited", "slow down", quota="requests_per_minute", limit=60, used=60,
                               retry_after=7, retry_after_header=7), warren.RateLimitedError,
     {"status": 429, "code": "rate_limited", "retry_after": 7.0, "limit": 60.0}),
    ("500 internal", error(500, "internal", "internal error"), warren.ServerError, {"status": 500}),
    ("501 not implemented", error(501, "not_implemented", "no code service"), warren.NotSupportedError,
     {"status": 501}),
    ("502 html", Reply(502, "<html>bad gateway</html>"), warren.ServerError, {"status": 502}),
    ("503 unavailable", error(503, "unavailable", "try later", retry_after_header=3), warren.UnavailableError,
     {"status": 503, "retry_after": 3.0}),
]


@pytest.mark.parametrize("name,reply,cls,attrs", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_mapping(mode: str, stub: Any, name: str, reply: Reply, cls: Type[Exception], attrs: Dict[str, Any]) -> None:
    stub.script(reply)
    with pytest.raises(cls) as ei:
        perform(mode, stub, get_info, max_retries=0)
    err = ei.value
    assert isinstance(err, warren.APIError) and isinstance(err, warren.WarrenError)
    for k, v in attrs.items():
        assert getattr(err, k) == v, (k, getattr(err, k))
    assert len(stub.requests) == 1
    assert str(err)  # people can read it


def test_permission_denied_alias() -> None:
    assert warren.PermissionDeniedError is warren.ForbiddenError


def test_auth_header_and_user_agent(mode: str, stub: Any) -> None:
    stub.script(Reply(200, SANDBOX))
    info = perform(mode, stub, get_info)
    assert info.sandbox_id == SANDBOX["id"] and info.limits.memory_mb == 512
    assert info.created_at is not None and info.created_at.microsecond == 123456
    req = stub.requests[0]
    assert req.method == "GET" and req.path == "/v1/sandboxes/" + str(SANDBOX["id"])
    assert req.headers["Authorization"] == "Bearer sk_test"
    assert req.headers["User-Agent"].startswith("warren-python/")


def test_retry_429_honours_retry_after(mode: str, stub: Any) -> None:
    stub.script(error(429, "rate_limited", "slow down", retry_after=1, retry_after_header=1), Reply(200, SANDBOX))
    start = time.monotonic()
    info = perform(mode, stub, get_info)
    elapsed = time.monotonic() - start
    assert info.sandbox_id == SANDBOX["id"]
    assert len(stub.requests) == 2
    gap = stub.requests[1].at - stub.requests[0].at
    assert gap >= 1.0, f"retried after {gap:.3f}s, Retry-After was 1s"
    assert elapsed >= 1.0


def test_retry_after_from_body_when_no_header(mode: str, stub: Any) -> None:
    stub.script(error(429, "rate_limited", "slow down", retry_after=0.5), Reply(200, SANDBOX))
    perform(mode, stub, get_info)
    assert stub.requests[1].at - stub.requests[0].at >= 0.5


def test_retry_503_with_backoff(mode: str, stub: Any) -> None:
    stub.script(error(503, "unavailable"), error(503, "unavailable"), Reply(200, SANDBOX))
    perform(mode, stub, get_info, backoff=0.2)
    assert len(stub.requests) == 3
    gaps = [b.at - a.at for a, b in zip(stub.requests, stub.requests[1:])]
    # Backoff doubles (0.2 then 0.4) with jitter between half and the whole delay.
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2, gaps


def test_retries_are_bounded(mode: str, stub: Any) -> None:
    stub.default = error(503, "unavailable")
    with pytest.raises(warren.UnavailableError):
        perform(mode, stub, get_info, max_retries=2)
    assert len(stub.requests) == 3


@pytest.mark.parametrize("reply", [error(500, "internal"), error(400, "invalid"), error(404, "not_found"),
                                   error(429, "quota_exceeded", quota="max_sandboxes", limit=1, used=1)],
                         ids=["500", "400", "404", "429-quota"])
def test_no_retry(mode: str, stub: Any, reply: Reply) -> None:
    stub.default = reply
    with pytest.raises(warren.APIError):
        perform(mode, stub, get_info, max_retries=3)
    assert len(stub.requests) == 1


def test_retry_after_longer_than_allowed_is_raised(mode: str, stub: Any) -> None:
    stub.default = error(429, "rate_limited", retry_after_header=30)
    start = time.monotonic()
    with pytest.raises(warren.RateLimitedError) as ei:
        perform(mode, stub, get_info, max_retry_wait=5)
    assert ei.value.retry_after == 30
    assert time.monotonic() - start < 5 and len(stub.requests) == 1


def test_retry_resends_json_body(mode: str, stub: Any) -> None:
    stub.script(error(503, "unavailable"), Reply(200, SANDBOX))
    perform(mode, stub, lambda s: s.set_timeout(60))
    assert [json.loads(r.body) for r in stub.requests] == [{"timeout": 60}, {"timeout": 60}]


def test_upload_of_an_iterator_is_not_retried(mode: str, stub: Any) -> None:
    stub.default = error(503, "unavailable")
    with pytest.raises(warren.UnavailableError):
        perform(mode, stub, lambda s: s.files.write("/f", iter([b"a", b"b"])))
    assert len(stub.requests) == 1


def test_upload_of_a_seekable_file_is_retried_whole(mode: str, stub: Any, tmp_path: Any) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"0123456789" * 1000)
    info = {"name": "f", "path": "/f", "type": "file", "size": 10000, "mode": 420}
    stub.script(error(503, "unavailable"), Reply(200, info))
    with open(p, "rb") as f:
        perform(mode, stub, lambda s: s.files.write("/f", f))
    assert [r.body for r in stub.requests] == [p.read_bytes()] * 2


def test_request_timeout(mode: str, stub: Any) -> None:
    stub.default = Reply(200, SANDBOX, delay=2)
    start = time.monotonic()
    with pytest.raises(warren.TimeoutError) as ei:
        perform(mode, stub, get_info, request_timeout=0.3)
    assert isinstance(ei.value, builtins.TimeoutError)
    assert time.monotonic() - start < 1.5


def test_connection_refused(mode: str) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    class Nowhere:
        url = f"http://127.0.0.1:{port}"

    with pytest.raises(warren.ConnectionError) as ei:
        perform(mode, Nowhere, get_info)
    assert isinstance(ei.value, builtins.ConnectionError)


def test_kill_reports_whether_it_was_running(mode: str, stub: Any) -> None:
    stub.script(Reply(204), error(404, "not_found"))
    assert perform(mode, stub, lambda s: s.kill()) is True
    assert perform(mode, stub, lambda s: s.kill()) is False
    assert [r.method for r in stub.requests] == ["DELETE", "DELETE"]
