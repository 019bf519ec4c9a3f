"""HTTP front end of the Warren code interpreter.

Speaks the E2B code-interpreter protocol as the official @e2b/code-interpreter SDK uses it:
POST /execute streams newline-delimited JSON (one object per line, never a blank line),
/contexts manages execution contexts, GET /health answers OK. No authentication: the
sandbox's proxy guards the port. Query parameters (?source=...) are ignored.
"""

import json
import os
import select
import signal
import socket
import sys
import threading
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import ci_contexts as cc
import ci_procs
import ci_python

FACTORIES = {
    "python": ci_python.PythonContext,
    "javascript": ci_procs.NodeContext,
    "bash": ci_procs.BashContext,
}
MAX_BODY = 64 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: /execute writes its status line and headers, then one chunk per line.
    # With Nagle's algorithm the first chunk waits for the ACK of the headers, which a
    # client delays up to 40 ms (measured: every runCode("1+1") took 44 ms, 15 without).
    disable_nagle_algorithm = True
    server_version = "warren-code-interpreter/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("code-interpreter: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")

    def _route(self, method):
        registry = self.server.registry
        parts = [p for p in urllib.parse.urlsplit(self.path).path.split("/") if p]
        try:
            body = self._read_body()
            if parts == ["health"] and method == "GET":
                self._send(200, "OK")
            elif parts == ["execute"] and method == "POST":
                self._execute(registry, self._json(body))
            elif parts == ["contexts"] and method == "GET":
                self._send_json(200, registry.list())
            elif parts == ["contexts"] and method == "POST":
                req = self._json(body, allow_empty=True)
                ctx = registry.create(req.get("language"), req.get("cwd"))
                self._send_json(200, ctx.describe())
            elif len(parts) == 2 and parts[0] == "contexts" and method == "DELETE":
                registry.remove(parts[1])
                self._send(204, "")
            elif len(parts) == 3 and parts[0] == "contexts" and parts[2] == "restart" and method == "POST":
                registry.restart(parts[1])
                self._send_json(200, None)
            elif parts in (["health"], ["execute"], ["contexts"]) or (parts[:1] == ["contexts"] and len(parts) in (2, 3)):
                self._send(405, "method %s not allowed on %s" % (method, self.path))
            else:
                self._send(404, "no route %s %s" % (method, self.path))
        except cc.NotFound as e:
            self._send(404, str(e))
        except cc.BadRequest as e:
            self._send(400, str(e))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:
            traceback.print_exc()
            self._send(500, "internal error: %s" % e)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise cc.BadRequest("request body larger than %d bytes" % MAX_BODY)
        return self.rfile.read(n) if n > 0 else b""

    def _json(self, body, allow_empty=False):
        if not body.strip() and allow_empty:
            return {}
        try:
            req = json.loads(body)
        except ValueError as e:
            raise cc.BadRequest("request body is not JSON: %s" % e) from None
        if req is None and allow_empty:
            return {}
        if not isinstance(req, dict):
            raise cc.BadRequest("request body must be a JSON object")
        return req

    def _send(self, status, text, content_type="text/plain; charset=utf-8"):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status, obj):
        self._send(status, json.dumps(obj), "application/json")

    def _execute(self, registry, req):
        code = req.get("code")
        if not isinstance(code, str):
            raise cc.BadRequest("code (a string) is required")
        env = req.get("env_vars") or {}
        if not isinstance(env, dict):
            raise cc.BadRequest("env_vars must be an object of strings")
        env = {str(k): "" if v is None else str(v) for k, v in env.items()}
        timeout = req.get("timeout")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            timeout = None
        ctx = registry.for_execution(req.get("context_id"), req.get("language"))

        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()
        gone = False
        sock = self.connection

        def cancelled():
            return gone or peer_closed(sock)

        def send(line):
            nonlocal gone
            if gone:
                return  # keep draining: the run must finish before the lock is released
            data = (json.dumps(line) + "\n").encode()
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            except OSError:
                gone = True

        try:
            for line in ctx.execute(code, env, timeout, cancelled):
                send(line)
        except Exception as e:  # the status is sent: report it in the stream
            traceback.print_exc()
            send(cc.error_line("InternalError", "the code interpreter failed: %s" % e))
            send({"type": "end_of_execution"})
        if gone:
            self.close_connection = True
            return
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


def peer_closed(sock):
    """Whether the client closed its side: the socket is readable and at EOF."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    port = int(os.environ.get("WARREN_CI_PORT") or 49999)
    host = os.environ.get("WARREN_CI_HOST") or "0.0.0.0"
    registry = cc.Registry(FACTORIES, cc.User())
    server = Server((host, port), Handler)
    server.registry = registry

    def stop(signum, frame):
        registry.kill_all()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if os.environ.get("WARREN_CI_PREWARM", "1") != "0":
        # Start the default Python kernel now: the first execution then needs no wait.
        ctx = registry.default("python")

        def prewarm():
            try:
                with ctx.exec_lock:
                    ctx.ensure_started()
            except Exception as e:
                sys.stderr.write("code-interpreter: starting the default Python kernel: %s\n" % e)

        threading.Thread(target=prewarm, name="prewarm", daemon=True).start()
    sys.stderr.write("code-interpreter: listening on %s:%d\n" % (host, port))
    sys.stderr.flush()
    server.serve_forever()
