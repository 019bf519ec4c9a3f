"""Every method of the synchronous client against a real server (see conftest.py for
the environment it needs)."""

from __future__ import annotations

import io
import os
import secrets
import time
from typing import Any, List, Tuple

import pytest

import warren
from conftest import Live
from warren import Sandbox

pytestmark = pytest.mark.integration


def test_lifecycle(live: Live) -> None:
    tag = secrets.token_hex(4)
    sbx = Sandbox.create(template="base", timeout=120, env={"GREETING": "hello"}, metadata={"run": tag},
                         limits={"cpu_cores": 1, "memory_mb": 256})
    try:
        info = sbx.info
        assert info.state == "running" and info.template == "base" and info.metadata == {"run": tag}
        assert info.env_keys == ["GREETING"] and info.limits.memory_mb == 256 and info.ends_at is not None
        assert sbx.commands.run("echo $GREETING").stdout == "hello\n"

        again = Sandbox.connect(sbx.id)
        assert again.get_info().sandbox_id == sbx.id and again.is_running()
        again.close()

        listed = Sandbox.list(metadata={"run": tag})
        assert [s.sandbox_id for s in listed] == [sbx.id]
        assert sbx.id in [s.sandbox_id for s in Sandbox.list(state="running")]
        assert Sandbox.list(metadata={"run": tag + "x"}) == []

        before = info.ends_at
        after = sbx.set_timeout(600).ends_at
        assert before is not None and after is not None and (after - before).total_seconds() > 300

        assert {t.template_id for t in Sandbox.templates() if t.ready} >= {"base"}
    finally:
        assert sbx.kill() is True
    assert sbx.kill() is False
    assert not sbx.is_running()
    assert sbx.get_info().state == "stopped"
    with pytest.raises(warren.ConflictError):
        sbx.commands.run("true")
    sbx.close()


def test_context_manager_kills_on_exit(live: Live) -> None:
    with Sandbox.create(timeout=120) as sbx:
        assert sbx.commands.run("true").exit_code == 0
        sid = sbx.id
    assert Sandbox.connect(sid).get_info().state == "stopped"


def test_context_manager_kills_when_the_body_raises(live: Live) -> None:
    with pytest.raises(RuntimeError):
        with Sandbox.create(timeout=120) as sbx:
            sid = sbx.id
            raise RuntimeError("boom")
    assert Sandbox.connect(sid).get_info().state == "stopped"


def test_errors(live: Live, sbx: Sandbox) -> None:
    with pytest.raises(warren.NotFoundError):
        Sandbox.connect("a" * 20)
    with pytest.raises(warren.AuthenticationError):
        Sandbox.list(api_key="sk_not_a_real_key")
    with pytest.raises(warren.InvalidArgumentError, match="no-such-template"):
        Sandbox.create(template="no-such-template")
    with pytest.raises(warren.InvalidArgumentError) as ei:
        sbx.commands.run("true", user="nobody-here")
    assert ei.value.status == 400 and ei.value.request_id
    with pytest.raises(warren.NotFoundError):
        sbx.files.read("/no/such/file")
    with pytest.raises(warren.InvalidArgumentError):
        sbx.files.read("/tmp")


def test_network_policy(live: Live) -> None:
    only = {"allow_out": ["198.18.0.7", "*.example.com"], "deny_out": ["0.0.0.0/0"]}
    with Sandbox.create(timeout=120, network=only) as sbx:
        assert sbx.info.network == warren.NetworkPolicy(**only)
        assert sbx.get_info().network == warren.NetworkPolicy(**only)
        assert sbx.set_network(deny_out=["198.18.0.0/15"]).network == warren.NetworkPolicy(deny_out=["198.18.0.0/15"])
        assert sbx.get_info().network.deny_out == ["198.18.0.0/15"]
        assert sbx.set_network().network == warren.NetworkPolicy()
        with pytest.raises(warren.InvalidArgumentError, match="allow_out"):
            sbx.set_network(allow_out=["not a host"])
        assert sbx.commands.run("true").exit_code == 0


def test_run(sbx: Sandbox) -> None:
    r = sbx.commands.run("echo out; echo err >&2")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "out\n", "err\n") and r.pid
    assert sbx.commands.run(["printf", "%s|", "a b", "c"]).stdout == "a b|c|"
    assert sbx.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    assert sbx.commands.run("whoami", user="root").stdout == "root\n"
    assert sbx.commands.run("echo $X$Y", env={"X": "1", "Y": "2"}).stdout == "12\n"
    assert sbx.commands.run("cat", stdin="typed in").stdout == "typed in"
    raw = bytes(range(256))
    r = sbx.commands.run(["python3", "-c", "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d[::-1])"],
                         stdin=raw)
    assert r.stdout_bytes == raw[::-1]


def test_exit_code_error(sbx: Sandbox) -> None:
    with pytest.raises(warren.CommandExitError) as ei:
        sbx.commands.run("echo partial; echo oops >&2; exit 3")
    e = ei.value
    assert (e.exit_code, e.stdout, e.stderr) == (3, "partial\n", "oops\n")
    assert sbx.commands.run("exit 4", check=False).exit_code == 4


@pytest.mark.parametrize("check", [True, False])
def test_command_timeout(sbx: Sandbox, check: bool) -> None:
    start = time.monotonic()
    with pytest.raises(warren.TimeoutError) as ei:
        sbx.commands.run("echo before; sleep 20", timeout=1, check=check)
    assert time.monotonic() - start < 10
    r = ei.value.result
    assert r is not None and r.timed_out and r.exit_code == -1 and r.stdout == "before\n"


def test_streaming_order_and_timing(sbx: Sandbox) -> None:
    seen: List[Tuple[float, str]] = []
    errs: List[str] = []
    start = time.monotonic()
    r = sbx.commands.run("for i in 1 2 3 4 5; do echo line$i; sleep 0.4; done; echo done >&2",
                         on_stdout=lambda t: seen.append((time.monotonic() - start, t)), on_stderr=errs.append)
    total = time.monotonic() - start
    assert "".join(t for _, t in seen) == "".join(f"line{i}\n" for i in range(1, 6)) == r.stdout
    assert errs == ["done\n"]
    # Output arrives while the command runs: line1 long before the end, lines spread out.
    assert seen[0][0] < total - 1.2, (seen, total)
    assert seen[-1][0] - seen[0][0] > 1.2, seen


def test_background_wait_and_kill(sbx: Sandbox) -> None:
    got: List[str] = []
    # The handle follows the output from when run() returns: the command waits a moment
    # before printing (output of its first milliseconds is not replayed by the API).
    h = sbx.commands.run("sleep 0.3; echo started; sleep 60", background=True, on_stdout=got.append)
    assert h.pid > 0
    assert wait_for(lambda: bool(got), 10)
    assert got == ["started\n"] and not h.done and h.exit_code is None
    assert h.kill() is True
    with pytest.raises(warren.CommandExitError) as ei:
        h.wait(timeout=10)
    assert ei.value.exit_code == -1 and ei.value.stdout == "started\n"
    assert h.kill() is False

    h = sbx.commands.run("sleep 0.5; echo fin", background=True)
    with pytest.raises(warren.TimeoutError):
        h.wait(timeout=0.05)
    assert h.wait(timeout=10).stdout == "fin\n"


def test_background_timeout_and_exit_code(sbx: Sandbox) -> None:
    start = time.monotonic()
    h = sbx.commands.run("sleep 30", background=True, timeout=1)
    # Killed at its timeout. The server's end event of a background process does not say
    # timed_out yet (only foreground commands do), so this is TimeoutError once it does
    # and CommandExitError(-1) until then; the unit tests hold the SDK to timed_out.
    with pytest.raises((warren.TimeoutError, warren.CommandExitError)) as ei:
        h.wait(timeout=15)
    assert time.monotonic() - start < 10
    r = ei.value.result
    assert r is not None and r.exit_code == -1
    h = sbx.commands.run("sleep 0.2; exit 3", background=True)
    with pytest.raises(warren.CommandExitError) as ce:
        h.wait(timeout=10)
    assert ce.value.exit_code == 3
    assert sbx.commands.run("sleep 0.2; exit 3", background=True, check=False).wait(timeout=10).exit_code == 3


def test_background_kill_takes_children(sbx: Sandbox) -> None:
    h = sbx.commands.run("sleep 300 & sleep 300 & wait", background=True)
    time.sleep(0.5)
    assert h.kill()
    with pytest.raises(warren.CommandExitError):
        h.wait(timeout=10)
    assert wait_for(lambda: "sleep 300" not in sbx.commands.run("ps -eo args", user="root").stdout, 5)


def test_background_stdin(sbx: Sandbox) -> None:
    got: List[str] = []
    h = sbx.commands.run("while read -r l; do echo got:$l; done; echo eof", background=True, stdin=True,
                         on_stdout=got.append)
    h.send_stdin("one\n")
    h.send_stdin(b"two\n")
    assert wait_for(lambda: "".join(got).count("got:") == 2, 10)
    assert "".join(got) == "got:one\ngot:two\n" and not h.done
    h.close_stdin()
    r = h.wait(timeout=10)
    assert r.stdout == "got:one\ngot:two\neof\n"
    with pytest.raises(warren.NotFoundError):
        h.send_stdin("late\n")  # the process ended

    # Without stdin=True, stdin is not open.
    h = sbx.commands.run("sleep 30", background=True)
    with pytest.raises(warren.ConflictError):
        h.send_stdin("x")
    assert h.kill()

    # Bytes that are not UTF-8 arrive intact.
    h = sbx.commands.run(["python3", "-c", "import sys; print(sys.stdin.buffer.read().hex())"], background=True,
                         stdin=True)
    h.send_stdin(b"\x00\xff\xfe")
    h.close_stdin()
    assert h.wait(timeout=10).stdout == "00fffe\n"


def test_list_connect_and_kill_by_pid(sbx: Sandbox) -> None:
    h = sbx.commands.run("while sleep 0.2; do echo tick; done", background=True, cwd="/tmp")
    procs = {p.pid: p for p in sbx.commands.list()}
    assert h.pid in procs, procs
    p = procs[h.pid]
    assert (p.cmd, p.args, p.cwd) == ("/bin/bash", ["-c", "while sleep 0.2; do echo tick; done"], "/tmp")

    h.disconnect()
    assert h.done
    with pytest.raises(warren.WarrenError, match="disconnect"):
        h.wait(timeout=1)
    assert h.pid in [p.pid for p in sbx.commands.list()]  # still running

    ticks: List[str] = []
    again = sbx.commands.connect(h.pid, on_stdout=ticks.append)
    assert again.pid == h.pid
    assert wait_for(lambda: len(ticks) >= 2, 10), ticks
    assert sbx.commands.kill(h.pid) is True
    with pytest.raises(warren.CommandExitError) as ei:
        again.wait(timeout=10)
    assert ei.value.exit_code == -1 and ei.value.stdout.startswith("tick\n")
    assert wait_for(lambda: h.pid not in [p.pid for p in sbx.commands.list()], 5)
    assert sbx.commands.kill(h.pid) is False
    with pytest.raises(warren.NotFoundError):
        sbx.commands.send_stdin(h.pid, "x")
    with pytest.raises(warren.NotFoundError):
        sbx.commands.connect(999999)


def test_files_text_and_bytes(sbx: Sandbox) -> None:
    info = sbx.files.write("/tmp/sdk/dir/hello.txt", "héllo\n")
    assert (info.name, info.type, info.size) == ("hello.txt", "file", len("héllo\n".encode()))
    assert sbx.files.read("/tmp/sdk/dir/hello.txt") == "héllo\n"
    raw = bytes(range(256)) * 4
    sbx.files.write("/tmp/sdk/dir/raw.bin", raw)
    assert sbx.files.read("/tmp/sdk/dir/raw.bin", format="bytes") == raw
    names = {(e.name, e.type) for e in sbx.files.list("/tmp/sdk/dir")}
    assert names == {("hello.txt", "file"), ("raw.bin", "file")}
    deep = {e.path for e in sbx.files.list("/tmp/sdk", depth=2)}
    assert "/tmp/sdk/dir/raw.bin" in deep


def test_files_exists_make_dir_remove_rename(sbx: Sandbox) -> None:
    assert sbx.files.make_dir("/tmp/sdk-md/a/b") is True
    assert sbx.files.make_dir("/tmp/sdk-md/a/b") is False
    info = sbx.files.get_info("/tmp/sdk-md/a/b")
    assert (info.name, info.type, info.path, info.owner) == ("b", "dir", "/tmp/sdk-md/a/b", "user")
    sbx.files.write("/tmp/sdk-md/a/f.txt", "x")
    assert sbx.files.get_info("/tmp/sdk-md/a/f.txt").size == 1
    assert sbx.files.exists("/tmp/sdk-md/a/b") and sbx.files.exists("/tmp/sdk-md/a/f.txt")
    assert not sbx.files.exists("/tmp/sdk-md/a/nope") and not sbx.files.exists("/nope/nope")
    assert sbx.files.exists("/")
    with pytest.raises(warren.ConflictError):
        sbx.files.make_dir("/tmp/sdk-md/a/f.txt")
    with pytest.raises(warren.NotFoundError):
        sbx.files.get_info("/tmp/sdk-md/a/nope")

    moved = sbx.files.rename("/tmp/sdk-md/a/f.txt", "/tmp/sdk-md/c/g.txt")
    assert (moved.path, moved.size) == ("/tmp/sdk-md/c/g.txt", 1)
    assert not sbx.files.exists("/tmp/sdk-md/a/f.txt") and sbx.files.read("/tmp/sdk-md/c/g.txt") == "x"
    with pytest.raises(warren.NotFoundError):
        sbx.files.rename("/tmp/sdk-md/a/f.txt", "/tmp/sdk-md/x")

    sbx.files.remove("/tmp/sdk-md/c/g.txt")
    assert not sbx.files.exists("/tmp/sdk-md/c/g.txt")
    sbx.files.remove("/tmp/sdk-md")
    assert not sbx.files.exists("/tmp/sdk-md")
    with pytest.raises(warren.NotFoundError):
        sbx.files.remove("/tmp/sdk-md")

    # Relative paths are in the user's home; root's make_dir is root's.
    assert sbx.files.make_dir("sdk-rel") and sbx.files.exists("/home/user/sdk-rel")
    assert sbx.files.make_dir("/tmp/sdk-root", user="root")
    assert sbx.files.get_info("/tmp/sdk-root").owner == "root"


def test_files_stream_upload_download(sbx: Sandbox, tmp_path: Any) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    info = sbx.files.upload(src, "/tmp/sdk-big/up.bin")
    assert info.size == len(data)
    dst = tmp_path / "down.bin"
    assert sbx.files.download("/tmp/sdk-big/up.bin", dst) == len(data)
    assert dst.read_bytes() == data

    chunks = (data[i:i + 100_000] for i in range(0, len(data), 100_000))
    assert sbx.files.write("/tmp/sdk-big/gen.bin", chunks).size == len(data)
    with sbx.files.read("/tmp/sdk-big/gen.bin", format="stream") as s:
        parts = list(s)
    assert len(parts) > 1 and b"".join(parts) == data
    buf = io.BytesIO()
    sbx.files.download("/tmp/sdk-big/gen.bin", buf)
    assert buf.getvalue() == data
    digest = sbx.commands.run("sha256sum /tmp/sdk-big/up.bin").stdout.split()[0]
    import hashlib

    assert digest == hashlib.sha256(data).hexdigest()


def test_get_host_reaches_a_background_server(live: Live, sbx: Sandbox) -> None:
    need_proxy(live)
    sbx.files.write("/tmp/www/index.html", "hello from the sandbox\n")
    h = sbx.commands.run("cd /tmp/www && exec python3 -m http.server 8000", background=True)
    domain = sbx.info.domain
    assert domain, "the server reports no sandbox domain"
    host = sbx.get_host(8000)
    assert host == f"8000-{sbx.id}.{domain}"
    assert wait_for(lambda: 8000 in [p.port for p in sbx.list_ports()], 20)
    port = next(p for p in sbx.list_ports() if p.port == 8000)
    assert port.url == f"http://{host}/"
    body = ""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        resp = live.fetch(host, "/index.html")
        if resp.status_code == 200:
            body = resp.text
            break
        time.sleep(0.2)
    assert body == "hello from the sandbox\n"
    assert "GET /index.html" in h.stderr or wait_for(lambda: "GET /index.html" in h.stderr)
    assert h.kill()
    assert Sandbox.connect(sbx.id, domain="other.example").get_host(8000) == f"8000-{sbx.id}.other.example"


def need_proxy(live: Live) -> None:
    """Fetching a sandbox host needs the proxy's address unless *.<domain> resolves."""
    if live.proxy_url is None:
        from conftest import need

        need("WARREN_PROXY_URL")


def wait_for(cond: Any, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_run_code_state_output_and_errors(ci_sbx: Sandbox) -> None:
    outs: List[str] = []
    ex = ci_sbx.run_code("x = 41\nprint('side')\nx + 1", on_stdout=lambda m: outs.append(m.line))
    assert ex.text == "42" and ex.logs.stdout == ["side\n"] and outs == ["side\n"] and ex.error is None
    assert ci_sbx.run_code("x * 2").text == "82"
    errs: List[Any] = []
    ex = ci_sbx.run_code("1 / 0", on_error=errs.append)
    assert ex.error is not None and ex.error.name == "ZeroDivisionError" and "division by zero" in ex.error.value
    assert errs and errs[0].name == "ZeroDivisionError"
    ex = ci_sbx.run_code("import time\nprint('a', flush=True)\ntime.sleep(5)", timeout=1)
    assert ex.error is not None and ex.error.name == "KeyboardInterrupt" and ex.logs.stdout == ["a\n"]


def test_run_code_streams_while_running(ci_sbx: Sandbox) -> None:
    seen: List[Tuple[float, str]] = []
    start = time.monotonic()
    ci_sbx.run_code("import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.4)",
                    on_stdout=lambda m: seen.append((time.monotonic() - start, m.line)))
    total = time.monotonic() - start
    assert "".join(t for _, t in seen) == "0\n1\n2\n3\n"
    assert seen[0][0] < total - 0.8, (seen, total)


def test_run_code_png(ci_sbx: Sandbox) -> None:
    results: List[Any] = []
    ex = ci_sbx.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()",
                         on_result=results.append)
    pngs = [r.png for r in ex.results if r.png]
    assert len(pngs) == 1 and pngs[0][:8] == b"\x89PNG\r\n\x1a\n" and results
    import struct

    width, height = struct.unpack(">II", pngs[0][16:24])
    assert (width, height) == (640, 480)


def test_run_code_html_and_languages(ci_sbx: Sandbox) -> None:
    ex = ci_sbx.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
    assert ex.results and ex.results[-1].html and "<table" in ex.results[-1].html
    assert ci_sbx.run_code("console.log('js'); 3 + 4", language="javascript").text == "7"
    assert ci_sbx.run_code("echo from-bash", language="bash").logs.stdout == ["from-bash\n"]


def test_code_contexts(ci_sbx: Sandbox) -> None:
    ctx = ci_sbx.create_code_context(language="python", cwd="/tmp")
    assert ctx.language == "python" and ctx.cwd == "/tmp"
    assert ctx.id in [c.id for c in ci_sbx.list_code_contexts()]
    ci_sbx.run_code("y = 5", context=ctx)
    assert ci_sbx.run_code("y", context=ctx).text == "5"
    assert ci_sbx.run_code("import os; os.getcwd()", context=ctx).text == "/tmp"
    assert ci_sbx.run_code("y", context=ctx.id).text == "5"
    ex = ci_sbx.run_code("y")  # the default context does not share the state
    assert ex.error is not None and ex.error.name == "NameError"
    ci_sbx.restart_code_context(ctx)
    ex = ci_sbx.run_code("y", context=ctx)
    assert ex.error is not None and ex.error.name == "NameError"
    ci_sbx.remove_code_context(ctx)
    assert ctx.id not in [c.id for c in ci_sbx.list_code_contexts()]
    with pytest.raises(warren.NotFoundError):
        ci_sbx.remove_code_context(ctx)


def test_run_code_needs_an_interpreter(sbx: Sandbox) -> None:
    with pytest.raises(warren.ConflictError):
        sbx.run_code("1")


def test_kill_ends_commands_waiting_in_other_threads(live: Live) -> None:
    import threading

    sbx = Sandbox.create(timeout=120)
    caught: List[BaseException] = []

    def run() -> None:
        try:
            sbx.commands.run("sleep 60")
        except BaseException as e:
            caught.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    bg = sbx.commands.run("sleep 60", background=True)
    assert sbx.kill() is True
    t.join(10)
    assert not t.is_alive() and len(caught) == 1 and isinstance(caught[0], warren.SandboxKilledError)
    with pytest.raises(warren.SandboxKilledError):
        bg.wait(timeout=5)
    sbx.close()


def test_sandbox_stopped_elsewhere_ends_commands(live: Live) -> None:
    """When another client kills the sandbox, the server ends the command streams of this
    one (code conflict)."""
    import threading

    sbx = Sandbox.create(timeout=120)
    caught: List[BaseException] = []

    def run() -> None:
        try:
            sbx.commands.run("sleep 60")
        except BaseException as e:
            caught.append(e)

    t = threading.Thread(target=run)
    t.start()
    bg = sbx.commands.run("sleep 60", background=True)
    time.sleep(0.5)
    other = Sandbox.connect(sbx.id)
    start = time.monotonic()
    assert other.kill() is True
    other.close()
    t.join(15)
    assert not t.is_alive() and len(caught) == 1 and isinstance(caught[0], warren.ConflictError), caught
    with pytest.raises(warren.ConflictError):
        bg.wait(timeout=15)
    assert time.monotonic() - start < 15
    sbx.close()
