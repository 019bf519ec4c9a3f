"""Every method of the asyncio client against a real server (see conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from typing import Any, List, Tuple

import pytest

import warren
from conftest import Live
from warren import AsyncSandbox

pytestmark = pytest.mark.integration


async def test_lifecycle(live: Live) -> None:
    tag = secrets.token_hex(4)
    sbx = await AsyncSandbox.create(timeout=120, env={"A": "b"}, metadata={"run": tag}, limits={"memory_mb": 256})
    try:
        assert sbx.info.state == "running" and sbx.info.env_keys == ["A"] and sbx.info.limits.memory_mb == 256
        again = await AsyncSandbox.connect(sbx.id)
        assert (await again.get_info()).sandbox_id == sbx.id and await again.is_running()
        await again.close()
        assert [s.sandbox_id for s in await AsyncSandbox.list(metadata={"run": tag})] == [sbx.id]
        assert sbx.id in [s.sandbox_id for s in await AsyncSandbox.list(state=["running"], limit=50)]
        before = sbx.info.ends_at
        after = (await sbx.set_timeout(600)).ends_at
        assert before and after and (after - before).total_seconds() > 300
        assert "base" in {t.template_id for t in await AsyncSandbox.templates()}
    finally:
        assert await sbx.kill() is True
    assert await sbx.kill() is False
    assert not await sbx.is_running()
    with pytest.raises(warren.ConflictError):
        await sbx.commands.run("true")
    await sbx.close()


async def test_context_manager_kills_on_exit(live: Live) -> None:
    async with AsyncSandbox.create(timeout=120) as sbx:
        assert (await sbx.commands.run("echo $((6*7))")).stdout == "42\n"
        sid = sbx.id
    probe = await AsyncSandbox.connect(sid)
    assert (await probe.get_info()).state == "stopped"
    await probe.close()
    sbx2 = await AsyncSandbox.create(timeout=120)
    async with sbx2:
        pass
    with pytest.raises(warren.WarrenError, match="closed"):
        await sbx2.get_info()
    probe = await AsyncSandbox.connect(sbx2.id)
    assert not await probe.is_running()
    await probe.close()


async def test_errors(live: Live) -> None:
    with pytest.raises(warren.NotFoundError):
        await AsyncSandbox.connect("b" * 20)
    with pytest.raises(warren.AuthenticationError):
        await AsyncSandbox.list(api_key="sk_wrong")
    with pytest.raises(warren.InvalidArgumentError):
        await AsyncSandbox.create(template="no-such-template")


async def test_commands(live: Live) -> None:
    async with AsyncSandbox.create(timeout=300) as sbx:
        r = await sbx.commands.run("echo out; echo err >&2", cwd="/tmp", env={"Z": "1"})
        assert (r.stdout, r.stderr, r.exit_code) == ("out\n", "err\n", 0)
        assert (await sbx.commands.run(["cat"], stdin=b"\x00\x01\xff")).stdout_bytes == b"\x00\x01\xff"
        assert (await sbx.commands.run("whoami", user="root")).stdout == "root\n"
        with pytest.raises(warren.CommandExitError) as ei:
            await sbx.commands.run("echo o; echo e >&2; exit 5")
        assert (ei.value.exit_code, ei.value.stdout, ei.value.stderr) == (5, "o\n", "e\n")
        with pytest.raises(warren.TimeoutError) as te:
            await sbx.commands.run("echo a; sleep 20", timeout=1, check=False)
        assert te.value.result is not None and te.value.result.timed_out and te.value.result.stdout == "a\n"

        # Streaming order and timing, with a coroutine callback.
        seen: List[Tuple[float, str]] = []
        start = time.monotonic()

        async def on_out(t: str) -> None:
            seen.append((time.monotonic() - start, t))

        await sbx.commands.run("for i in 1 2 3 4; do echo l$i; sleep 0.4; done", on_stdout=on_out)
        total = time.monotonic() - start
        assert "".join(t for _, t in seen) == "l1\nl2\nl3\nl4\n"
        assert seen[0][0] < total - 0.8 and seen[-1][0] - seen[0][0] > 0.8, (seen, total)

        # Background: wait, kill, stdin, list, re-attach.
        got: List[str] = []
        h = await sbx.commands.run("sleep 0.3; echo up; sleep 60", background=True, on_stdout=got.append)
        assert h.pid > 0
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == ["up\n"] and not h.done
        with pytest.raises(warren.TimeoutError):
            await h.wait(timeout=0.1)
        assert h.pid in [p.pid for p in await sbx.commands.list()]
        assert await h.kill() is True
        with pytest.raises(warren.CommandExitError) as ei:
            await h.wait(timeout=10)
        assert ei.value.exit_code == -1
        assert await h.kill() is False

        h = await sbx.commands.run("while read -r l; do echo got:$l; done; echo eof", background=True, stdin=True)
        await h.send_stdin("a\n")
        await h.send_stdin(b"b\n")
        await h.close_stdin()
        assert (await h.wait(timeout=10)).stdout == "got:a\ngot:b\neof\n"

        h = await sbx.commands.run("sleep 30", background=True)
        with pytest.raises(warren.ConflictError):
            await h.send_stdin("not open")
        await h.disconnect()
        assert h.done
        assert h.pid in [p.pid for p in await sbx.commands.list()]
        again = await sbx.commands.connect(h.pid)
        assert await sbx.commands.kill(h.pid) is True
        with pytest.raises(warren.CommandExitError):
            await again.wait(timeout=10)
        with pytest.raises(warren.NotFoundError):
            await sbx.commands.connect(999999)


async def test_kill_ends_background_handles(live: Live) -> None:
    sbx = await AsyncSandbox.create(timeout=120)
    h = await sbx.commands.run("sleep 60", background=True)
    fg = asyncio.create_task(sbx.commands.run("sleep 60"))
    await asyncio.sleep(0.5)
    await sbx.kill()
    with pytest.raises(warren.SandboxKilledError):
        await h.wait(timeout=5)
    with pytest.raises(warren.SandboxKilledError):
        await asyncio.wait_for(fg, 5)
    await sbx.close()


async def test_sandbox_stopped_elsewhere_ends_commands(live: Live) -> None:
    sbx = await AsyncSandbox.create(timeout=120)
    h = await sbx.commands.run("sleep 60", background=True)
    fg = asyncio.create_task(sbx.commands.run("sleep 60"))
    await asyncio.sleep(0.5)
    other = await AsyncSandbox.connect(sbx.id)
    assert await other.kill() is True
    await other.close()
    with pytest.raises(warren.ConflictError):
        await h.wait(timeout=15)
    with pytest.raises(warren.ConflictError):
        await asyncio.wait_for(fg, 15)
    await sbx.close()


async def test_files(live: Live, tmp_path: Any) -> None:
    async with AsyncSandbox.create(timeout=300) as sbx:
        await sbx.files.write("/tmp/a/t.txt", "tëxt")
        assert await sbx.files.read("/tmp/a/t.txt") == "tëxt"
        await sbx.files.write("/tmp/a/b.bin", bytes(range(256)))
        assert await sbx.files.read("/tmp/a/b.bin", format="bytes") == bytes(range(256))
        assert {e.name for e in await sbx.files.list("/tmp/a")} == {"t.txt", "b.bin"}
        assert await sbx.files.exists("/tmp/a/t.txt") and not await sbx.files.exists("/tmp/a/zz")
        assert await sbx.files.make_dir("/tmp/a/d/e") and not await sbx.files.make_dir("/tmp/a/d/e")
        assert (await sbx.files.get_info("/tmp/a/d/e")).is_dir
        with pytest.raises(warren.ConflictError):
            await sbx.files.make_dir("/tmp/a/t.txt")
        moved = await sbx.files.rename("/tmp/a/t.txt", "/tmp/a/d/u.txt")
        assert moved.path == "/tmp/a/d/u.txt" and await sbx.files.read("/tmp/a/d/u.txt") == "tëxt"
        await sbx.files.remove("/tmp/a/d")
        assert not await sbx.files.exists("/tmp/a/d")
        with pytest.raises(warren.NotFoundError):
            await sbx.files.remove("/tmp/a/d")
        with pytest.raises(warren.NotFoundError):
            await sbx.files.read("/tmp/a/missing")

        data = os.urandom(2 * 1024 * 1024 + 5)
        src = tmp_path / "up.bin"
        src.write_bytes(data)
        assert (await sbx.files.upload(src, "/tmp/big/up.bin")).size == len(data)

        async def agen() -> Any:
            for i in range(0, len(data), 65536):
                yield data[i:i + 65536]

        assert (await sbx.files.write("/tmp/big/agen.bin", agen())).size == len(data)
        s = await sbx.files.read("/tmp/big/agen.bin", format="stream")
        parts = [c async for c in s]
        assert len(parts) > 1 and b"".join(parts) == data
        dst = tmp_path / "down.bin"
        assert await sbx.files.download("/tmp/big/up.bin", dst) == len(data)
        assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_get_host(live: Live) -> None:
    if live.proxy_url is None:
        from conftest import need

        need("WARREN_PROXY_URL")
    async with AsyncSandbox.create(timeout=120) as sbx:
        await sbx.files.write("/tmp/www/index.html", "async hello\n")
        h = await sbx.commands.run("cd /tmp/www && exec python3 -m http.server 8123", background=True)
        host = sbx.get_host(8123)
        assert host == f"8123-{sbx.id}.{sbx.info.domain}"
        for _ in range(100):
            if 8123 in [p.port for p in await sbx.list_ports()]:
                break
            await asyncio.sleep(0.2)
        assert f"http://{host}/" in [p.url for p in await sbx.list_ports()]
        body = ""
        for _ in range(100):
            resp = await asyncio.to_thread(live.fetch, host, "/index.html")
            if resp.status_code == 200:
                body = resp.text
                break
            await asyncio.sleep(0.2)
        assert body == "async hello\n"
        assert await h.kill()


async def test_run_code(live: Live) -> None:
    async with AsyncSandbox.create(template="code-interpreter", timeout=300) as sbx:
        outs: List[str] = []

        async def on_out(m: Any) -> None:
            outs.append(m.line)

        ex = await sbx.run_code("v = 20\nprint('hi')\nv + 1", on_stdout=on_out)
        assert ex.text == "21" and outs == ["hi\n"]
        assert (await sbx.run_code("v * 2")).text == "40"
        ex = await sbx.run_code("raise ValueError('nope')")
        assert ex.error is not None and ex.error.name == "ValueError" and ex.error.value == "nope"
        ex = await sbx.run_code("import matplotlib.pyplot as plt\nplt.plot([3, 1])\nplt.show()")
        png = next(r.png for r in ex.results if r.png)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        ctx = await sbx.create_code_context(cwd="/tmp")
        await sbx.run_code("w = 1", context=ctx)
        assert (await sbx.run_code("w", context=ctx)).text == "1"
        assert ctx.id in [c.id for c in await sbx.list_code_contexts()]
        await sbx.restart_code_context(ctx)
        assert (await sbx.run_code("w", context=ctx)).error is not None
        await sbx.remove_code_context(ctx)
        assert ctx.id not in [c.id for c in await sbx.list_code_contexts()]
