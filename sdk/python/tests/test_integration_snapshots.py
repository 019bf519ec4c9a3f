"""Pause, resume, fork and snapshots against a real server (see conftest.py for the
environment it needs), with the synchronous client and the asyncio one."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any, List

import pytest

import warren
from conftest import Live
from warren import AsyncSandbox, Sandbox

pytestmark = pytest.mark.integration

# A server that answers each GET with a counter kept in memory: after a pause and
# resume, or in a fork, it goes on from where it was.
COUNTER = """import http.server
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global n
        n += 1
        b = str(n).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""

ASK = "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/').read().decode())\""


def start_counter(sbx: Sandbox) -> None:
    sbx.files.write("/tmp/counter.py", COUNTER)
    h = sbx.commands.run("python3 /tmp/counter.py", background=True)
    h.disconnect()  # it lives on in the sandbox; a pause ends the handle's stream
    deadline = time.monotonic() + 20
    while not any(p.port == 8000 for p in sbx.list_ports()):
        assert time.monotonic() < deadline, "the counter server did not listen on port 8000 within 20s"
        time.sleep(0.2)


def count(sbx: Sandbox) -> str:
    return sbx.commands.run(ASK).stdout.strip()


def kill_all(sbxs: List[Any]) -> None:
    for s in sbxs:
        try:
            s.kill()
        except warren.WarrenError:
            pass
        s.close()


def test_pause_resume_keeps_files_and_processes(live: Live) -> None:
    tag = secrets.token_hex(4)
    sbx = Sandbox.create(template="base", timeout=600, metadata={"run": tag})
    try:
        sbx.files.write("/home/user/kept.txt", "kept\n")
        start_counter(sbx)
        assert count(sbx) == "1"
        via_proxy = bool(live.proxy_url)
        if via_proxy:
            r = live.fetch(sbx.get_host(8000))
            assert r.status_code == 200 and r.text == "2"

        info = sbx.pause()
        assert info.state == "paused" and info.is_paused and sbx.info.state == "paused"
        assert [s.sandbox_id for s in Sandbox.list(state="paused", metadata={"run": tag})] == [sbx.id]
        assert Sandbox.connect(sbx.id).info.state == "paused"
        assert not sbx.is_running()
        with pytest.raises(warren.ConflictError):
            sbx.pause()

        info = sbx.resume()
        assert info.state == "running" and info.sandbox_id == sbx.id
        with pytest.raises(warren.ConflictError):
            sbx.resume()
        assert sbx.files.read("/home/user/kept.txt") == "kept\n"
        nxt = 3 if via_proxy else 2
        assert count(sbx) == str(nxt), "the background server's memory is kept"
        if via_proxy:
            r = live.fetch(sbx.get_host(8000))
            assert r.status_code == 200 and r.text == str(nxt + 1), "the same URL answers after resume"
    finally:
        kill_all([sbx])


def test_fork_of_three_has_isolated_writes(live: Live) -> None:
    parent = Sandbox.create(template="base", timeout=600)
    forks: List[Sandbox] = []
    try:
        parent.files.write("/home/user/who.txt", "parent\n")
        start_counter(parent)
        assert count(parent) == "1"
        forks = parent.fork(3, timeout=300)
        assert len(forks) == 3 and len({f.id for f in forks} | {parent.id}) == 4
        for f in forks:
            assert f.info.state == "running"
            f.files.write("/home/user/who.txt", f.id + "\n")
        for f in forks:
            assert f.files.read("/home/user/who.txt") == f.id + "\n", "a sibling's write leaked"
            assert count(f) == "2", "a fork has the parent's memory at the fork"
        assert parent.files.read("/home/user/who.txt") == "parent\n"
        assert count(parent) == "2"
        with pytest.raises(ValueError):
            parent.fork(21)
        parent.pause()
        with pytest.raises(warren.ConflictError):
            parent.fork(1)
    finally:
        kill_all(forks + [parent])


def test_snapshot_create_from_list_delete(live: Live) -> None:
    src = Sandbox.create(template="base", timeout=600)
    made: List[Sandbox] = []
    name = f"sdk-py-{secrets.token_hex(4)}"
    snap = None
    try:
        src.files.write("/home/user/state.txt", "saved state\n")
        snap = src.create_snapshot(name)
        assert snap.snapshot_id.startswith("snap_") and snap.name == name and snap.sandbox_id == src.id
        assert snap.template == "base" and snap.created_at is not None
        with pytest.raises(warren.ConflictError):
            src.create_snapshot(name)

        made.append(Sandbox.create(snapshot=name, timeout=300))
        made.append(Sandbox.create(snapshot=snap.snapshot_id, timeout=300))
        for s in made:
            assert s.info.state == "running" and s.id != src.id and s.info.template == "base"
            assert s.files.read("/home/user/state.txt") == "saved state\n"

        assert [x.snapshot_id for x in Sandbox.list_snapshots(sandbox_id=src.id)] == [snap.snapshot_id]
        assert snap.snapshot_id in [x.snapshot_id for x in Sandbox.list_snapshots(page_size=1)]
        assert Sandbox.get_snapshot(name).snapshot_id == snap.snapshot_id
        assert Sandbox.delete_snapshot(snap.snapshot_id) is True
        assert Sandbox.delete_snapshot(snap.snapshot_id) is False
        snap = None
        assert Sandbox.list_snapshots(sandbox_id=src.id) == []
        with pytest.raises(warren.NotFoundError):
            Sandbox.get_snapshot(name)
        assert made[0].commands.run("cat /home/user/state.txt").stdout == "saved state\n", \
            "a sandbox started from a deleted snapshot lives on"
    finally:
        if snap is not None:
            Sandbox.delete_snapshot(snap.snapshot_id)
        kill_all(made + [src])


async def test_async_pause_resume_fork_snapshot(live: Live) -> None:
    sbx = await AsyncSandbox.create(template="base", timeout=600)
    others: List[AsyncSandbox] = []
    snap = None
    try:
        await sbx.files.write("/home/user/a.txt", "async\n")
        assert (await sbx.pause()).state == "paused"
        assert (await sbx.resume()).state == "running"
        assert await sbx.files.read("/home/user/a.txt") == "async\n"
        others = await sbx.fork(2)
        assert len(others) == 2
        for f in others:
            assert await f.files.read("/home/user/a.txt") == "async\n"
        snap = await sbx.create_snapshot()
        assert snap.name is None
        assert snap.snapshot_id in [s.snapshot_id for s in await AsyncSandbox.list_snapshots(sandbox_id=sbx.id)]
        started = await AsyncSandbox.create(snapshot=snap.snapshot_id, timeout=300)
        others.append(started)
        assert await started.files.read("/home/user/a.txt") == "async\n"
        assert await AsyncSandbox.delete_snapshot(snap.snapshot_id) is True
        snap = None
    finally:
        if snap is not None:
            await AsyncSandbox.delete_snapshot(snap.snapshot_id)
        for s in others + [sbx]:
            try:
                await s.kill()
            except warren.WarrenError:
                pass
            await s.close()


def test_lifecycle_pause_at_timeout_and_auto_resume(live: Live) -> None:
    if not live.proxy_url and not os.environ.get("CI"):
        pytest.skip("set WARREN_PROXY_URL to reach the sandbox through the proxy")
    sbx = Sandbox.create(template="base", timeout=600, on_timeout="pause", auto_resume=True)
    try:
        assert sbx.info.on_timeout == "pause" and sbx.info.auto_resume
        start_counter(sbx)
        assert live.fetch(sbx.get_host(8000)).text == "1"
        sbx.set_timeout(1)
        deadline = time.monotonic() + 90
        while sbx.get_info().state == "running" and time.monotonic() < deadline:
            time.sleep(0.25)
        assert sbx.info.state == "paused", f"at its timeout the sandbox is {sbx.info.state} ({sbx.info.end_reason})"
        r = live.fetch(sbx.get_host(8000), timeout=60)
        assert r.status_code == 200 and r.text == "2", "traffic resumed it and the same process answered"
        assert sbx.get_info().state == "running"
    finally:
        kill_all([sbx])
