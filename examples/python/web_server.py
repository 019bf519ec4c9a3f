"""A web server in a sandbox, reached from outside through Warren's proxy: start
`python3 -m http.server` as a background command, wait until the sandbox lists port 8000
as listening, then fetch a page from the host name `sbx.get_host(8000)` gives (the
domain is the one the server reports with the sandbox).

Run: WARREN_API_URL=... WARREN_API_KEY=... [WARREN_PROXY_URL=...] python3 web_server.py
Prints "GET http://<port>-<id>.<domain>/ -> 200: hello from a Warren sandbox".

If the sandbox domain resolves to the proxy (a wildcard DNS record, or *.localhost on
systems that resolve it), the host is fetched directly. Otherwise set WARREN_PROXY_URL to
the proxy's address: the request then goes there with the host in the Host header,
which is exactly what a browser sends.
"""

from __future__ import annotations

import os
import threading
import time

import httpx

from warren import Sandbox

PAGE = "<h1>hello from a Warren sandbox</h1>\n"

# The server's log arrives on the SDK's streaming thread while the main thread prints
# too; print() writes its text and its newline separately, so two threads' lines can
# run into each other. One lock keeps each line whole.
_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def fetch(host: str) -> httpx.Response:
    proxy = os.environ.get("WARREN_PROXY_URL")
    if proxy:
        return httpx.get(proxy.rstrip("/") + "/", headers={"Host": host}, timeout=10)
    return httpx.get(f"http://{host}/", timeout=10)


def main() -> None:
    with Sandbox.create(timeout=120) as sbx:
        sbx.files.write("/home/user/site/index.html", PAGE)
        server = sbx.commands.run("python3 -m http.server 8000", cwd="/home/user/site", background=True,
                                  on_stderr=lambda line: say("server log: " + line.rstrip("\n")))
        for _ in range(100):  # the server needs a moment to listen
            if any(p.port == 8000 for p in sbx.list_ports()):
                break
            time.sleep(0.1)
        host = sbx.get_host(8000)
        resp = fetch(host)
        text = resp.text.replace("<h1>", "").replace("</h1>", "").strip()
        say(f"GET http://{host}/ -> {resp.status_code}: {text}")
        server.kill()


if __name__ == "__main__":
    main()
