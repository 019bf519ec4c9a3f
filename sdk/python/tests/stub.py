"""An in-process HTTP server for unit tests: each request is answered by the next
scripted reply, and every request is recorded with its arrival time."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple, Union


@dataclass
class Reply:
    """A scripted answer. events, if set, are sent as Server-Sent Events, each after its
    delay in seconds; delay holds the whole answer back."""

    status: int = 200
    body: Union[bytes, str, dict, None] = None
    headers: Dict[str, str] = field(default_factory=dict)
    events: Optional[List[Tuple[float, str, Any]]] = None
    delay: float = 0.0


@dataclass
class Recorded:
    """One request the stub received."""

    at: float
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


def error(status: int, code: str, message: str = "boom", **extra: Any) -> Reply:
    """An API error answer."""
    headers = {}
    if "retry_after_header" in extra:
        headers["Retry-After"] = str(extra.pop("retry_after_header"))
    return Reply(status, {"code": code, "message": message, "request_id": "req_test", **extra}, headers)


def sse(*events: Tuple[float, str, Any]) -> Reply:
    """A streamed answer: (delay, event name, data) per event."""
    return Reply(200, events=list(events))


SANDBOX = {
    "id": "abcdefghij0123456789", "team_id": "team1", "template": "base", "state": "running",
    "metadata": {"k": "v"}, "env_keys": ["A"], "internet": True,
    "limits": {"cpu_cores": 1, "memory_mb": 512, "disk_mb": 2048, "max_processes": 1024},
    "runtime": "gvisor", "created_at": "2026-01-02T03:04:05.123456789Z",
    "started_at": "2026-01-02T03:04:05.5Z", "ends_at": "2026-01-02T03:09:05Z", "domain": "sbx.test:3001",
}


class Stub:
    """The stub server. Use as a context manager; url is its base URL."""

    def __init__(self) -> None:
        self.replies: List[Union[Reply, Callable[[Recorded], Reply]]] = []
        self.default: Optional[Reply] = None
        self.requests: List[Recorded] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _serve(self) -> None:
                rec = Recorded(time.monotonic(), self.command, self.path, dict(self.headers), self._body())
                with stub._lock:
                    stub.requests.append(rec)
                    reply = stub.replies.pop(0) if stub.replies else stub.default
                if reply is None:
                    reply = Reply(500, {"code": "internal", "message": "stub: no reply scripted", "request_id": "x"})
                if callable(reply):
                    reply = reply(rec)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.events is not None:
                    self._stream(reply)
                    return
                body = reply.body
                ctype = "application/json"
                if isinstance(body, dict):
                    body = json.dumps(body).encode()
                elif isinstance(body, str):
                    body, ctype = body.encode(), "text/html"
                elif body is None:
                    body = b""
                    ctype = ""
                self.send_response(reply.status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for delay, name, data in reply.events or []:
                        if delay:
                            time.sleep(delay)
                        if name == ":":
                            self.wfile.write(b": keep-alive\n\n")
                        else:
                            payload = data if isinstance(data, str) else json.dumps(data)
                            self.wfile.write(f"event: {name}\ndata: {payload}\n\n".encode())
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> "Stub":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, *replies: Union[Reply, Callable[[Recorded], Reply]]) -> None:
        """Queue replies, answered in order."""
        self.replies.extend(replies)
