"""Commands, code execution and files against the stub server, with both clients:
what is sent, how streams are interpreted, and which errors they raise."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, List, Tuple

import pytest

import warren
from conftest import perform
from stub import Reply, error, sse


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


def test_command_timeout_raises_timeout_error(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 7}), out("stdout", "a\n"),
                    (0, "error", {"code": "unavailable", "message": "command timed out after 1s", "request_id": "r"})))
    with pytest.raises(warren.TimeoutError):
        perform(mode, stub, lambda s: s.commands.run("sleep 5", timeout=1))


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


def test_background_handle(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 42}), out("stdout", "late\n", 0.3),
                    (0, "end", {"exit_code": 0})))
    seen: List[str] = []

    def op(s: Any) -> Any:
        if mode == "sync":
            h = s.commands.run("x", background=True, on_stdout=seen.append)
            assert h.pid == 42 and not h.done and seen == []
            return h.wait(timeout=5)

        async def w() -> Any:
            h = await s.commands.run("x", background=True, on_stdout=seen.append)
            assert h.pid == 42 and not h.done and seen == []
            return await h.wait(timeout=5)

        return w()

    r = perform(mode, stub, op)
    assert r.stdout == "late\n" and seen == ["late\n"]


def test_background_wait_timeout(mode: str, stub: Any) -> None:
    stub.script(sse((0, "start", {"pid": 42}), (1.5, "end", {"exit_code": 0})))

    def op(s: Any) -> Any:
        if mode == "sync":
            h = s.commands.run("x", background=True)
            with pytest.raises(warren.TimeoutError):
                h.wait(timeout=0.2)
            return h.wait(timeout=5)

        async def w() -> Any:
            h = await s.commands.run("x", background=True)
            with pytest.raises(warren.TimeoutError):
                await h.wait(timeout=0.2)
            return await h.wait(timeout=5)

        return w()

    assert perform(mode, stub, op).exit_code == 0


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


def test_files_exists_lists_the_parent(mode: str, stub: Any) -> None:
    entry = {"name": "a.txt", "path": "/d/a.txt", "type": "file", "size": 3, "mode": 420}
    stub.script(Reply(200, {"entries": [entry]}), Reply(200, {"entries": [entry]}), error(404, "not_found"))
    assert perform(mode, stub, lambda s: s.files.exists("/d/a.txt")) is True
    assert perform(mode, stub, lambda s: s.files.exists("/d/b.txt")) is False
    assert perform(mode, stub, lambda s: s.files.exists("/nope/b.txt")) is False


def test_files_read_not_found(mode: str, stub: Any) -> None:
    stub.script(error(404, "not_found", "path '/x' does not exist"))
    with pytest.raises(warren.NotFoundError):
        perform(mode, stub, lambda s: s.files.read("/x"))


def test_get_host(mode: str, stub: Any) -> None:
    host = perform(mode, stub, lambda s: s.get_host(8080), domain="sandbox.example.com")
    assert host == "8080-abcdefghij0123456789.sandbox.example.com"
    with pytest.raises(ValueError):
        perform(mode, stub, lambda s: s.get_host(0))


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
