"""Transport-independent HTTP pieces shared by the sync and async clients: the retry
policy, error decoding and a Server-Sent Events decoder. Nothing here does I/O."""

from __future__ import annotations

import email.utils
import json
import random
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Type, Union

import httpx

from . import _errors as E
from ._config import Config
from .models import ERROR_BODY

#: A request body: bytes, or a zero-argument callable returning a fresh body (bytes or an
#: iterable of chunks) for each attempt.
Body = Union[None, bytes, Callable[[], Any]]

__all__ = ["USER_AGENT", "retry_delay", "error_from_response", "error_from_body", "SSEEvent", "SSEDecoder"]

#: Sent as User-Agent.
USER_AGENT = "warren-python/0.2.0"

_STATUS_ERRORS: Dict[int, Type[E.APIError]] = {
    400: E.InvalidArgumentError,
    401: E.AuthenticationError,
    403: E.ForbiddenError,
    404: E.NotFoundError,
    409: E.ConflictError,
    413: E.InvalidArgumentError,
    501: E.NotSupportedError,
    503: E.UnavailableError,
}

_CODE_STATUS = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "not_implemented": 501,
    "unavailable": 503,
    "internal": 500,
}


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date. None if absent or
    unparseable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retryable(err: E.APIError) -> bool:
    """Only a rate limit (429 that is not a quota refusal) and 503 are retried: both mean
    the request was refused before it did anything, and waiting can help."""
    if isinstance(err, E.QuotaExceededError):
        return False
    return isinstance(err, (E.RateLimitedError, E.UnavailableError))


def retry_delay(err: E.APIError, attempt: int, cfg: Config) -> Optional[float]:
    """How long to wait before retry number attempt+1 (attempt counts from 0), or None
    when the error must be raised: it is not retryable, the retries are used up, or the
    server asks for a longer wait than cfg.max_retry_wait."""
    if not retryable(err) or attempt >= cfg.max_retries:
        return None
    ra = getattr(err, "retry_after", None)
    if ra is not None:
        if ra > cfg.max_retry_wait:
            return None
        return float(ra)
    base: float = min(cfg.max_backoff, cfg.backoff * (2 ** attempt))
    return base * (0.5 + random.random() / 2)


def _decode_json(body: bytes) -> Optional[Dict[str, Any]]:
    try:
        v = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return v if isinstance(v, dict) else None


def error_from_body(
    body: Mapping[str, Any], status: Optional[int] = None, retry_after_header: Optional[str] = None
) -> E.APIError:
    """Map a decoded Error body (and its status, if known) to the matching exception."""
    f = ERROR_BODY.read(body)
    code = f["code"]
    if status is None:
        status = _CODE_STATUS.get(code, 500)
    msg = f["message"] or f"HTTP {status}"
    kw: Dict[str, Any] = dict(status=status, code=code, request_id=f["request_id"], field=f["field"], body=body)
    retry_after = parse_retry_after(retry_after_header)
    if retry_after is None:
        retry_after = f["retry_after"]
    if code == "quota_exceeded":
        return E.QuotaExceededError(msg, quota=f["quota"], limit=f["limit"], used=f["used"], **kw)
    if status == 429:
        return E.RateLimitedError(msg, retry_after=retry_after, limit=f["limit"], **kw)
    if status == 503:
        return E.UnavailableError(msg, retry_after=retry_after, **kw)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = E.ServerError if status >= 500 else E.APIError
    return cls(msg, **kw)


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> E.APIError:
    """Map an error response to the matching exception. A body that is not the API's
    Error JSON (a proxy's HTML page, say) still maps by status."""
    decoded = _decode_json(body)
    if decoded is None or "code" not in decoded:
        text = body.decode("utf-8", "replace").strip()[:300]
        decoded = {"code": "", "message": f"HTTP {status}" + (f": {text}" if text else "")}
    return error_from_body(decoded, status, headers.get("retry-after"))


def stream_error(body: Mapping[str, Any]) -> E.APIError:
    """The exception for an "error" event that ends a command stream, e.g. code
    "conflict" when the sandbox stopped while the command ran. (A command killed at its
    timeout is not an error event: its "end" event says timed_out.)"""
    return error_from_body(body)


@dataclass(frozen=True)
class SSEEvent:
    """One Server-Sent Event: its name (default "message") and its data, decoded as JSON
    when possible."""

    event: str
    data: Any


class SSEDecoder:
    """Incremental Server-Sent Events decoder over raw bytes. Feed chunks, iterate events.
    Comment lines (keep-alives) are skipped; only the event and data fields are used."""

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: List[str] = []

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        """Add a chunk; yield every event it completes."""
        self._buf += chunk
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                return
            line, self._buf = self._buf[:i], self._buf[i + 1:]
            if line.endswith(b"\r"):
                line = line[:-1]
            ev = self._line(line.decode("utf-8", "replace"))
            if ev is not None:
                yield ev

    def flush(self) -> Iterator[SSEEvent]:
        """End of stream: yield a last event that was not followed by a blank line."""
        if self._buf:
            ev = self._line(self._buf.decode("utf-8", "replace"))
            self._buf = b""
            if ev is not None:
                yield ev
        ev = self._line("")
        if ev is not None:
            yield ev

    def _line(self, line: str) -> Optional[SSEEvent]:
        if line == "":
            if not self._data and not self._event:
                return None
            raw = "\n".join(self._data)
            name = self._event or "message"
            self._event, self._data = "", []
            try:
                data: Any = json.loads(raw)
            except ValueError:
                data = raw
            return SSEEvent(name, data)
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def iter_events(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Decode a whole iterable of byte chunks."""
    d = SSEDecoder()
    for c in chunks:
        yield from d.feed(c)
    yield from d.flush()


def httpx_timeout(cfg: Config) -> httpx.Timeout:
    """The httpx timeouts for cfg."""
    return httpx.Timeout(cfg.request_timeout, connect=min(cfg.request_timeout, 10.0))


def transport_error(err: httpx.HTTPError, what: str) -> E.WarrenError:
    """Map an httpx transport failure to TimeoutError or ConnectionError."""
    if isinstance(err, httpx.TimeoutException):
        return E.TimeoutError(f"{what}: no answer from the server in time ({type(err).__name__}); "
                              "raise request_timeout if the server is just slow")
    return E.ConnectionError(f"{what}: {type(err).__name__}: {err}")


def nodelay(resp: httpx.Response) -> None:
    """Turn off Nagle's algorithm on the response's connection. httpcore writes a request's
    headers and body with separate sends; with Nagle on, the body waits for the server to
    ACK the headers, and a server in delayed-ACK mode holds that ACK for up to 40 ms, which
    would dominate the latency of a short command on a reused connection. Best effort."""
    stream = resp.extensions.get("network_stream")
    if stream is None:
        return
    try:
        sock = stream.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError, TypeError):
        pass
