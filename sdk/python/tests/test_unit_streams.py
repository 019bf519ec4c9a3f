"""Commands, code execution and files against the stub server, with both clients:
what is sent, how streams are interpreted, and which errors they raise."""

from __future__ import annotations

import base64
import inspect
import json
import time
from typing import Any, List, Tuple

import pytest

import warren
from conftest import perform
from stub import SANDBOX, Reply, error, sse


def out(kind: str, text: str, delay: float = 0.0) -> Tuple[float, str, Any]:
    return (delay, kind, {"data": base64.b64encode(text.encode()).decode(), "text": text})


def test_run_result_and_request(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}), out("stdout", "hi\n"), out("stderr", "warn\n"),
                    (0, ":", None), (0, "end", {"exit_code": 0})))
    r = perform(mode, stub, lambda s: s.commands.run("echo hi", env={"A": "1"}, cwd="/tmp", user="root",
                                                    timeout=2.5, stdin="in"))
    assert (r.exit_code, r.stdout, r.stderr, r.pid) == (0, "hi\n", "warn\n", 7)
    req = stub.requests[0]
    assert req.method == "POST" and req.path.endswith("/commands")
    assert req.headers["Accept"] == "text/event-stream"
    assert json.loads(req.body) == {"cmd": "echo hi", "env": {"A": "1"}, "cwd": "/tmp", "user": "root",
                                    "stdin": "in", "timeout": 3, "stream": True}


def test_run_argv_and_binary_stdin(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}), (0, "end", {"exit_code": 0})))
    perform(mode, stub, lambda s: s.commands.run(["cat", "-"], stdin=b"\x00\xff"))
    body = json.loads(stub.requests[0].body)
    assert body["args"] == ["cat", "-"] and base64.b64decode(body["stdin_base64"]) == b"\x00\xff"
    assert "cmd" not in body and "stdin" not in body


def test_exit_code_raises_command_exit_error(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}), out("stdout", "partial\n"), out("stderr", "bad thing\n"),
                    (0, "end", {"exit_code": 3, "error": "exit status 3"})))
    with pytest.raises(warren.CommandExitError) as ei:
        perform(mode, stub, lambda s: s.commands.run("false"))
    e = ei.value
    assert (e.exit_code, e.stdout, e.stderr, e.error) == (3, "partial\n", "bad thing\n", "exit status 3")
    assert "bad thing" in str(e)


def test_check_false_returns_result(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}), (0, "end", {"exit_code": 3})))
    r = perform(mode, stub, lambda s: s.commands.run("false", check=False))
    assert r.exit_code == 3 and not r.ok


@pytest.mark.parametrize("check", [True, False])
def test_command_timeout_raises_timeout_error(mode: str, stub: Any, check: bool) -> None:
    """A command killed at its timeout ends normally on the wire (timed_out); the SDK
    raises TimeoutError with the result, whatever check says."""
    stub.script(sse((0, "start", {"pid": 7}), out("stdout", "a\n"),
                    (0, "end", {"exit_code": -1, "error": "signal: killed", "timed_out": True})))
    with pytest.raises(warren.TimeoutError) as ei:
        perform(mode, stub, lambda s: s.commands.run("sleep 5", timeout=1, check=check))
    r = ei.value.result
    assert r is not None and (r.timed_out, r.exit_code, r.stdout, r.pid) == (True, -1, "a\n", 7)


def test_stream_error_event_maps_to_api_error(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}),
                    (0, "error", {"code": "conflict", "message": "sandbox stopped", "request_id": "r"})))
    with pytest.raises(warren.ConflictError):
        perform(mode, stub, lambda s: s.commands.run("sleep 5"))


def test_stream_cut_short_raises(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}), out("stdout", "a\n")))
    with pytest.raises(warren.ConnectionError):
        perform(mode, stub, lambda s: s.commands.run("sleep 5"))


def test_error_before_start_is_raised(mode: str, stub: Any) -> None:
    stub.script(error(409, "conflict", "sandbox is stopped"))
    with pytest.raises(warren.ConflictError):
        perform(mode, stub, lambda s: s.commands.run("true"))


def test_on_stdout_gets_chunks_in_order_as_they_arrive(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}), *[out("stdout", f"line{i}\n", 0.2) for i in range(4)],
                    out("stderr", "e\n"), (0.2, "end", {"exit_code": 0})))
    seen: List[Tuple[float, str]] = []
    errs: List[str] = []
    start = time.monotonic()
    perform(mode, stub, lambda s: s.commands.run("x", on_stdout=lambda t: seen.append((time.monotonic(), t)),
                                                 on_stderr=errs.append))
    end = time.monotonic()
    assert [t for _, t in seen] == [f"line{i}\n" for i in range(4)] and errs == ["e\n"]
    assert seen[0][0] - start < end - start - 0.5, "the first chunk arrived only at the end"


def test_async_callbacks_may_be_coroutines(stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}), out("stdout", "a"), (0, "end", {"exit_code": 0})))
    seen: List[str] = []

    async def cb(t: str) -> None:
        seen.append(t)

    perform("async", stub, lambda s: s.commands.run("x", on_stdout=cb))
    assert seen == ["a"]


def bg(pid: int, *events: Tuple[float, str, Any]) -> List[Reply]:
    """The answers to a background command: 201 with its pid, then its event stream."""
    return [Reply(201, {"pid": pid}), sse((0, "start", {"pid": pid}), *events)]


def background(mode: str, s: Any, then: Any, cmd: str = "x", **kw: Any) -> Any:
    """Start cmd in the background and call then(handle) (awaited for async)."""
    if mode == "sync":
        return then(s.commands.run(cmd, background=True, **kw))

    async def go() -> Any:
        h = await s.commands.run(cmd, background=True, **kw)
        r = then(h)
        return await r if inspect.isawaitable(r) else r

    return go()


def test_background_handle(mode: str, stub: Any) -> None:
    stub.script(*bg(42, out("stdout", "late\n", 0.3), (0, "end", {"exit_code": 0})))
    seen: List[str] = []

    def then(h: Any) -> Any:
        assert h.pid == 42 and not h.done and seen == []
        return h.wait(timeout=5)

    r = perform(mode, stub, lambda s: background(mode, s, then, on_stdout=seen.append, env={"A": "1"}))
    assert r.stdout == "late\n" and seen == ["late\n"] and r.pid == 42
    start, attach = stub.requests
    assert start.method == "POST" and start.path == f"/v1/sandboxes/{SANDBOX['id']}/commands"
    assert json.loads(start.body) == {"cmd": "x", "env": {"A": "1"}, "background": True}
    assert attach.method == "GET" and attach.path == f"/v1/sandboxes/{SANDBOX['id']}/processes/42/events"
    assert attach.headers["Accept"] == "text/event-stream"


def test_background_wait_timeout(mode: str, stub: Any) -> None:
    stub.script(*bg(42, (1.5, "end", {"exit_code": 0})))

    def then(h: Any) -> Any:
        if mode == "sync":
            with pytest.raises(warren.TimeoutError):
                h.wait(timeout=0.2)
            return h.wait(timeout=5)

        async def w() -> Any:
            with pytest.raises(warren.TimeoutError):
                await h.wait(timeout=0.2)
            return await h.wait(timeout=5)

        return w()

    assert perform(mode, stub, lambda s: background(mode, s, then)).exit_code == 0


def test_background_own_timeout_and_exit_codes(mode: str, stub: Any) -> None:
    stub.script(*bg(42, (0, "end", {"exit_code": -1, "error": "signal: killed", "timed_out": True})),
                *bg(43, (0, "end", {"exit_code": 2, "error": "exit status 2"})),
                *bg(44, (0, "end", {"exit_code": 2})))
    with pytest.raises(warren.TimeoutError) as ei:
        perform(mode, stub, lambda s: background(mode, s, lambda h: h.wait(5), timeout=1.5))
    assert ei.value.result is not None and ei.value.result.timed_out
    assert json.loads(stub.requests[0].body)["timeout"] == 2
    with pytest.raises(warren.CommandExitError) as ce:
        perform(mode, stub, lambda s: background(mode, s, lambda h: h.wait(5)))
    assert ce.value.exit_code == 2
    assert perform(mode, stub, lambda s: background(mode, s, lambda h: h.wait(5), check=False)).exit_code == 2


def test_background_stdin_kill_and_signals(mode: str, stub: Any) -> None:
    """stdin=True asks for stdin_open; send_stdin, close_stdin and kill use the process
    routes while the handle follows the output."""
    stub.script(*bg(42, out("stdout", "got:a\n", 0.6), (0.1, "end", {"exit_code": -1, "error": "signal: killed"})),
                Reply(204), Reply(204), Reply(204), Reply(204))

    def then(h: Any) -> Any:
        if mode == "sync":
            h.send_stdin("a\n")
            h.send_stdin(b"\xff")
            h.send_stdin("")  # nothing to send: no request
            h.close_stdin()
            assert h.kill() is True
            with pytest.raises(warren.CommandExitError) as ei:
                h.wait(5)
            assert h.kill() is False  # ended: no request
            return ei.value

        async def w() -> Any:
            await h.send_stdin("a\n")
            await h.send_stdin(b"\xff")
            await h.send_stdin("")
            await h.close_stdin()
            assert await h.kill() is True
            with pytest.raises(warren.CommandExitError) as ei:
                await h.wait(5)
            assert await h.kill() is False
            return ei.value

        return w()

    e = perform(mode, stub, lambda s: background(mode, s, then, cmd="cat", stdin=True))
    assert e.exit_code == -1 and e.stdout == "got:a\n"
    base = f"/v1/sandboxes/{SANDBOX['id']}/processes/42"
    got = [(r.method, r.path, json.loads(r.body) if r.body else None) for r in stub.requests]
    assert got == [
        ("POST", f"/v1/sandboxes/{SANDBOX['id']}/commands", {"cmd": "cat", "background": True, "stdin_open": True}),
        ("GET", base + "/events", None),
        ("POST", base + "/stdin", {"data": "a\n"}),
        ("POST", base + "/stdin", {"data_base64": "/w=="}),
        ("POST", base + "/stdin/close", None),
        ("POST", base + "/signal", {"signal": "KILL"}),
    ]


def test_process_routes_errors(mode: str, stub: Any) -> None:
    stub.script(error(409, "conflict", "stdin of process 42 is not open"), error(404, "not_found", "no process 42"),
                error(404, "not_found", "no process 43"))
    with pytest.raises(warren.ConflictError, match="not open"):
        perform(mode, stub, lambda s: s.commands.send_stdin(42, "x"))
    with pytest.raises(warren.NotFoundError):
        perform(mode, stub, lambda s: s.commands.close_stdin(42))
    assert perform(mode, stub, lambda s: s.commands.kill(43)) is False
    for bad in (0, -1, "7", True):
        with pytest.raises(ValueError):
            perform(mode, stub, lambda s: s.commands.kill(bad))
    assert len(stub.requests) == 3


def test_commands_list_and_connect(mode: str, stub: Any) -> None:
    stub.script(Reply(200, {"processes": [
        {"pid": 1, "cmd": "/usr/bin/start", "args": [], "cwd": "/", "tag": "start"},
        {"pid": 42, "cmd": "/bin/bash", "args": ["-c", "sleep 9"], "cwd": "/home/user"}]}),
        sse((0, "start", {"pid": 42}), out("stderr", "e\n"), (0, "end", {"exit_code": 0})))
    procs = perform(mode, stub, lambda s: s.commands.list())
    assert [(p.pid, p.cmd, p.args, p.cwd, p.tag) for p in procs] == [
        (1, "/usr/bin/start", [], "/", "start"), (42, "/bin/bash", ["-c", "sleep 9"], "/home/user", None)]
    errs: List[str] = []

    def op(s: Any) -> Any:
        if mode == "sync":
            return s.commands.connect(42, on_stderr=errs.append).wait(5)

        async def go() -> Any:
            h = await s.commands.connect(42, on_stderr=errs.append)
            return await h.wait(5)

        return go()

    r = perform(mode, stub, op)
    assert (r.exit_code, r.stderr, errs) == (0, "e\n", ["e\n"])
    assert [r.path for r in stub.requests] == [f"/v1/sandboxes/{SANDBOX['id']}/processes",
                                               f"/v1/sandboxes/{SANDBOX['id']}/processes/42/events"]


def test_connect_to_unknown_process(mode: str, stub: Any) -> None:
    stub.script(error(404, "not_found", "process 9 is not running"))
    with pytest.raises(warren.NotFoundError):
        perform(mode, stub, lambda s: s.commands.connect(9))


def test_failed_attach_names_the_started_process(mode: str, stub: Any) -> None:
    stub.script(Reply(201, {"pid": 42}), error(500, "internal", "attach broke"))
    with pytest.raises(warren.ServerError) as ei:
        perform(mode, stub, lambda s: s.commands.run("x", background=True), max_retries=0)
    assert any("commands.connect(42)" in n for n in getattr(ei.value, "__notes__", []))


def test_sandbox_stopping_ends_a_background_wait(mode: str, stub: Any) -> None:
    stub.script(*bg(42, out("stdout", "a\n"),
                    (0.2, "error", {"code": "conflict", "message": "sandbox stopped", "request_id": "r"})))
    with pytest.raises(warren.ConflictError):
        perform(mode, stub, lambda s: background(mode, s, lambda h: h.wait(5)))


def test_stdin_true_needs_background(mode: str, stub: Any) -> None:
    with pytest.raises(ValueError):
        perform(mode, stub, lambda s: s.commands.run("cat", stdin=True))
    assert stub.requests == []


PNG = b"\x89PNG\r\n\x1a\nrest"


def test_run_code_execution(mode: str, stub: Any) -> None:
    stub.script(sse(
        (0, "number_of_executions", {"type": "number_of_executions", "execution_count": 3}),
        (0, "stdout", {"type": "stdout", "text": "1\n", "timestamp": "t"}),
        (0, "stderr", {"type": "stderr", "text": "w\n"}),
        (0, "result", {"type": "result", "is_main_result": False, "text": "<Figure>",
                       "png": base64.b64encode(PNG).decode(), "extra": {"image/gif": "R0lG"}}),
        (0, "result", {"type": "result", "is_main_result": True, "text": "2", "json": {"a": 1}}),
        (0, "end_of_execution", {"type": "end_of_execution"}),
    ))
    outs: List[Any] = []
    results: List[Any] = []
    ex = perform(mode, stub, lambda s: s.run_code("print(1)\n1+1", language="python", timeout=5,
                                                  on_stdout=outs.append, on_result=results.append))
    assert ex.execution_count == 3 and ex.logs.stdout == ["1\n"] and ex.logs.stderr == ["w\n"]
    assert ex.error is None and ex.text == "2" and ex.results[0].png == PNG
    assert ex.results[1].json == {"a": 1} and ex.results[0].formats() == ["text", "png", "image/gif"]
    assert [o.line for o in outs] == ["1\n"] and outs[0].timestamp == "t" and len(results) == 2
    body = json.loads(stub.requests[0].body)
    assert body == {"code": "print(1)\n1+1", "language": "python", "timeout": 5, "stream": True}
    assert stub.requests[0].path.endswith("/execute")


def test_run_code_cell_error_is_in_execution(mode: str, stub: Any) -> None:
    stub.script(sse(
        (0, "error", {"type": "error", "name": "ZeroDivisionError", "value": "division by zero",
                      "traceback": ["l1", "l2"]}),
        (0, "end_of_execution", {"type": "end_of_execution"}),
    ))
    errs: List[Any] = []
    ex = perform(mode, stub, lambda s: s.run_code("1/0", on_error=errs.append))
    assert ex.error is not None and ex.error.name == "ZeroDivisionError" and ex.error.traceback == "l1\nl2"
    assert errs == [ex.error]


def test_run_code_failure_raises(mode: str, stub: Any) -> None:
    stub.script(sse((0, "stdout", {"type": "stdout", "text": "x"}),
                    (0, "error", {"code": "unavailable", "message": "interpreter gone", "request_id": "r"})))
    with pytest.raises(warren.UnavailableError):
        perform(mode, stub, lambda s: s.run_code("x"))


def test_run_code_context_and_language_conflict(mode: str, stub: Any) -> None:
    with pytest.raises(ValueError):
        perform(mode, stub, lambda s: s.run_code("x", language="python", context="c1"))


def test_files_read_write_list(mode: str, stub: Any) -> None:
    info = {"name": "a.txt", "path": "/d/a.txt", "type": "file", "size": 3, "mode": 420,
            "modified": "2026-01-01T00:00:00Z"}
    stub.script(Reply(200, info), Reply(200, {"entries": [info, {**info, "name": "sub", "type": "dir"}]}))
    got = perform(mode, stub, lambda s: s.files.write("/d/a.txt", "abc", user="root"))
    assert got.size == 3 and got.modified is not None
    entries = perform(mode, stub, lambda s: s.files.list("/d", depth=2))
    assert [e.name for e in entries] == ["a.txt", "sub"] and entries[1].is_dir
    put, ls = stub.requests
    assert put.method == "PUT" and put.body == b"abc" and "path=%2Fd%2Fa.txt" in put.path and "user=root" in put.path
    assert ls.method == "GET" and "depth=2" in ls.path


INFO = {"name": "a.txt", "path": "/d/a.txt", "type": "file", "size": 3, "mode": 420}


def test_files_exists_and_get_info(mode: str, stub: Any) -> None:
    stub.script(Reply(200, INFO), error(404, "not_found"), Reply(200, INFO), error(404, "not_found"))
    assert perform(mode, stub, lambda s: s.files.exists("/d/a.txt")) is True
    assert perform(mode, stub, lambda s: s.files.exists("/d/b.txt", user="root")) is False
    info = perform(mode, stub, lambda s: s.files.get_info("/d/a.txt"))
    assert (info.name, info.size, info.is_dir) == ("a.txt", 3, False)
    with pytest.raises(warren.NotFoundError):
        perform(mode, stub, lambda s: s.files.get_info("/nope"))
    assert [(r.method, r.path.split("?")[0]) for r in stub.requests] == [("GET", f"/v1/sandboxes/{SANDBOX['id']}/files/stat")] * 4
    assert "path=%2Fd%2Fb.txt" in stub.requests[1].path and "user=root" in stub.requests[1].path


def test_files_remove_make_dir_rename(mode: str, stub: Any) -> None:
    d = {**INFO, "name": "b", "path": "/d/b", "type": "dir"}
    stub.script(Reply(204), error(404, "not_found", "path '/x' does not exist"),
                Reply(201, d), Reply(200, d), error(409, "conflict", "/d/a.txt is a file"),
                Reply(200, {**INFO, "path": "/e/a.txt"}))
    assert perform(mode, stub, lambda s: s.files.remove("/d/a.txt")) is None
    with pytest.raises(warren.NotFoundError):
        perform(mode, stub, lambda s: s.files.remove("/x"))
    assert perform(mode, stub, lambda s: s.files.make_dir("/d/b")) is True
    assert perform(mode, stub, lambda s: s.files.make_dir("/d/b")) is False
    with pytest.raises(warren.ConflictError):
        perform(mode, stub, lambda s: s.files.make_dir("/d/a.txt"))
    moved = perform(mode, stub, lambda s: s.files.rename("/d/a.txt", "/e/a.txt", user="root"))
    assert moved.path == "/e/a.txt"
    base = f"/v1/sandboxes/{SANDBOX['id']}/files"
    got = [(r.method, r.path.split("?")[0]) for r in stub.requests]
    assert got == [("DELETE", base), ("DELETE", base), ("POST", base + "/dir"), ("POST", base + "/dir"),
                   ("POST", base + "/dir"), ("POST", base + "/move")]
    assert json.loads(stub.requests[-1].body) == {"from": "/d/a.txt", "to": "/e/a.txt"}
    assert stub.requests[-1].path.endswith("?user=root")


def test_files_read_not_found(mode: str, stub: Any) -> None:
    stub.script(error(404, "not_found", "path '/x' does not exist"))
    with pytest.raises(warren.NotFoundError):
        perform(mode, stub, lambda s: s.files.read("/x"))


def test_get_host(mode: str, stub: Any) -> None:
    """The domain the server reports with the sandbox, unless overridden explicitly."""
    assert perform(mode, stub, lambda s: s.get_host(8080)) == "8080-abcdefghij0123456789.sbx.test:3001"
    host = perform(mode, stub, lambda s: s.get_host(8080), domain="sandbox.example.com")
    assert host == "8080-abcdefghij0123456789.sandbox.example.com"
    with pytest.raises(ValueError):
        perform(mode, stub, lambda s: s.get_host(0))
    no_domain = {k: v for k, v in SANDBOX.items() if k != "domain"}
    with pytest.raises(warren.ConfigError, match="WARREN_DOMAIN"):
        perform(mode, stub, lambda s: s.get_host(8080), info=no_domain)
    assert stub.requests == []


def test_list_ports(mode: str, stub: Any) -> None:
    stub.script(Reply(200, {"ports": [{"port": 8000, "url": "http://8000-x.sbx.test:3001/"}, {"port": 22}]}))
    ports = perform(mode, stub, lambda s: s.list_ports())
    assert [(p.port, p.url) for p in ports] == [(8000, "http://8000-x.sbx.test:3001/"), (22, None)]
    assert stub.requests[0].path == f"/v1/sandboxes/{SANDBOX['id']}/ports"


def test_kill_ends_a_running_foreground_command(mode: str, stub: Any) -> None:
    """The server keeps a command stream of a killed sandbox open; kill() must still end
    a command another thread or task is waiting for."""
    stub.script(sse((0, "start", {"pid": 7}), (3, ":", None), (0, "end", {"exit_code": 0})), Reply(204))

    def op(s: Any) -> Any:
        if mode == "sync":
            import threading

            caught: List[BaseException] = []

            def run() -> None:
                try:
                    s.commands.run("sleep 60")
                except BaseException as e:
                    caught.append(e)

            t = threading.Thread(target=run)
            start = time.monotonic()
            t.start()
            time.sleep(0.3)
            assert s.kill() is True
            t.join(5)
            assert not t.is_alive() and time.monotonic() - start < 2.5
            return caught

        async def a() -> Any:
            import asyncio

            task = asyncio.create_task(s.commands.run("sleep 60"))
            await asyncio.sleep(0.3)
            start = time.monotonic()
            assert await s.kill() is True
            try:
                await asyncio.wait_for(task, 2)
            except BaseException as e:
                assert time.monotonic() - start < 2
                return [e]
            return []

        return a()

    caught = perform(mode, stub, op)
    assert len(caught) == 1 and isinstance(caught[0], warren.SandboxKilledError), caught


def test_stream_ended_by_our_own_kill_is_sandbox_killed(mode: str, stub: Any) -> None:
    """The server ends command streams (code conflict) before it answers the DELETE that
    stops the sandbox; a command of the client that kills it ends with SandboxKilledError,
    and one stopped by someone else with ConflictError."""
    conflict = (0, "error", {"code": "conflict", "message": "sandbox stopped", "request_id": "r"})
    stub.script(*bg(42, (0.3, *conflict[1:])), Reply(204, delay=0.6))

    def then(h: Any) -> Any:
        if mode == "sync":
            assert h._sbx.kill() is True
            with pytest.raises(warren.SandboxKilledError):
                h.wait(5)
            return None

        async def w() -> None:
            assert await h._sbx.kill() is True
            with pytest.raises(warren.SandboxKilledError):
                await h.wait(5)

        return w()

    perform(mode, stub, lambda s: background(mode, s, then))
