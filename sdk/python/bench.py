"""Measures what the SDK adds to a command round trip: p50 of N calls of
``sbx.commands.run("true")`` against a raw httpx POST of the same command to
/v1/sandboxes/{id}/commands, alternating the two in one run on one sandbox. The SDK
streams the command (SSE), so a raw SSE request is measured too: SDK minus raw SSE is
the client's own cost, raw SSE minus raw JSON is the server's cost of streaming.
The raw requests set TCP_NODELAY as the SDK does (--with-default also times a plain
httpx client, whose Nagle/delayed-ACK stall adds ~40 ms per POST on a reused connection).

Run: WARREN_API_URL=... WARREN_API_KEY=... python3 bench.py [-n 200]
Prints one line per variant and a "result:" line with the figures.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from typing import Callable, Dict, List

import httpx

from warren import Sandbox


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="calls per variant (default 200)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--with-default", action="store_true",
                    help="also time a plain httpx client that leaves Nagle's algorithm on")
    args = ap.parse_args()

    url = os.environ.get("WARREN_API_URL", "http://127.0.0.1:3000").rstrip("/")
    key = os.environ["WARREN_API_KEY"]
    with Sandbox.create(timeout=600) as sbx, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as raw:
        path = f"/v1/sandboxes/{sbx.id}/commands"
        plain = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

        def no_nagle(resp: httpx.Response) -> None:
            # The raw baseline gets the same TCP_NODELAY the SDK sets (see warren._http.nodelay).
            sock = resp.extensions["network_stream"].get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def sdk() -> None:
            sbx.commands.run("true")

        def raw_json() -> None:
            r = raw.post(path, json={"cmd": "true"})
            no_nagle(r)
            assert r.status_code == 200 and r.json()["exit_code"] == 0, r.text

        def raw_default() -> None:
            r = plain.post(path, json={"cmd": "true"})
            assert r.status_code == 200 and r.json()["exit_code"] == 0, r.text

        def raw_sse() -> None:
            with raw.stream("POST", path, json={"cmd": "true"}, headers={"Accept": "text/event-stream"}) as r:
                no_nagle(r)
                assert r.status_code == 200
                body = r.read()
            assert b"event: end" in body, body

        variants: Dict[str, Callable[[], None]] = {"sdk": sdk, "raw_json": raw_json, "raw_sse": raw_sse}
        if args.with_default:
            variants["raw_default"] = raw_default
        for _ in range(args.warmup):
            for f in variants.values():
                f()
        times: Dict[str, List[float]] = {k: [] for k in variants}
        names = list(variants)
        for i in range(args.n):
            # Rotate the order so that no variant always follows the same one.
            for name in names[i % len(names):] + names[:i % len(names)]:
                t0 = time.perf_counter()
                variants[name]()
                times[name].append((time.perf_counter() - t0) * 1000)
        plain.close()

    p50 = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        q = statistics.quantiles(v, n=20)
        print(f"{k:9s} n={len(v)} p50={p50[k]:.2f}ms p95={q[18]:.2f}ms min={min(v):.2f}ms")
    print(f"result: n={args.n} sdk_p50_ms={p50['sdk']:.2f} raw_http_p50_ms={p50['raw_json']:.2f} "
          f"raw_sse_p50_ms={p50['raw_sse']:.2f} overhead_ms={p50['sdk'] - p50['raw_json']:.2f} "
          f"ratio={p50['sdk'] / p50['raw_json']:.2f} client_overhead_vs_raw_sse_ms={p50['sdk'] - p50['raw_sse']:.2f}")


if __name__ == "__main__":
    main()
