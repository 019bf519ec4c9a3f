"""Template builds against the stub server, with both clients: the request sent (JSON,
or multipart with the Dockerfile and the context tarred less .dockerignore), the log
followed as Server-Sent Events, and a failed build as BuildError."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from stub import Reply, error, sse
from warren import AsyncTemplates, BuildError, BuildStep, NotFoundError, ReadyCheck, Templates, resolve_config
from warren._templates import IgnoreRules, tar_context

TEMPLATE = {"id": "app", "description": "built by team team1", "ready": False, "size_bytes": 0, "builtin": False}


def build_json(state: str, **kw: Any) -> Dict[str, Any]:
    b = {"id": "bld_1", "template_id": "app", "state": state, "steps": [], "created_at": "2026-12-06T10:00:00Z"}
    b.update(kw)
    return b


def line(i: int, msg: str, level: str = "info") -> Dict[str, Any]:
    return {"offset": i, "time": "2026-12-06T10:00:01Z", "level": level, "message": msg}


def run(mode: str, stub: Any, op: Callable[[Any], Any]) -> Any:
    """op(client) with a Templates (sync) or an AsyncTemplates (async)."""
    cfg = resolve_config(stub.url, "sk_test", backoff=0.01)
    if mode == "sync":
        with Templates(config=cfg) as t:
            return op(t)

    async def go() -> Any:
        async with AsyncTemplates(config=cfg) as t:
            r = op(t)
            return await r if inspect.isawaitable(r) else r

    return asyncio.run(go())


def multipart(stub: Any, i: int = 0) -> Dict[str, bytes]:
    """The parts of a recorded multipart request, by name."""
    req = stub.requests[i]
    ctype = req.headers.get("Content-Type") or req.headers.get("content-type")
    assert ctype.startswith("multipart/form-data; boundary=")
    boundary = ctype.split("boundary=", 1)[1].encode()
    parts: Dict[str, bytes] = {}
    for chunk in req.body.split(b"--" + boundary)[1:-1]:
        head, _, data = chunk[2:].partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        parts[name] = data[:-2]
    assert req.body.endswith(b"--" + boundary + b"--\r\n")
    return parts


def make_context(tmp: Path) -> Path:
    (tmp / "Dockerfile").write_text("FROM base\nCOPY . /srv/\n")
    (tmp / "app.py").write_text("print('hi')\n")
    (tmp / "notes.tmp").write_text("left out\n")
    (tmp / "build").mkdir()
    (tmp / "build" / "out.bin").write_bytes(b"\0" * 10)
    (tmp / "sub").mkdir()
    (tmp / "sub" / "keep.tmp").write_text("kept: *.tmp matches at the top only\n")
    (tmp / "sub" / "x.log").write_text("left out\n")
    os.symlink("app.py", tmp / "link.py")
    (tmp / ".dockerignore").write_text("# comment\n\n*.tmp\n/build\n./sub/*.log\nDockerfile\n")
    return tmp


def test_ignore_rules_match_the_cli() -> None:
    r = IgnoreRules(["*.tmp", "build", "sub/*.log", "a?c", "[xy].txt"])
    for rel, want in [("notes.tmp", True), ("sub/keep.tmp", False), ("build", True), ("build/deep/file", True),
                      ("sub/x.log", True), ("sub/deeper/x.log", False), ("abc", True), ("a/c", False),
                      ("x.txt", True), ("z.txt", False), ("app.py", False)]:
        assert r.ignored(rel) is want, rel


@pytest.mark.parametrize("pattern", ["!keep.tmp", "docs/**"])
def test_ignore_refuses_what_the_cli_refuses(tmp_path: Path, pattern: str) -> None:
    (tmp_path / ".dockerignore").write_text(f"*.log\n{pattern}\n")
    with pytest.raises(ValueError, match=r"\.dockerignore line 2"):
        IgnoreRules.read(tmp_path)


def test_tar_context(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    with tar_context(ctx) as f:
        f.seek(0)
        with tarfile.open(fileobj=f) as tf:
            members = {m.name: m for m in tf.getmembers()}
            assert sorted(members) == [".dockerignore", "app.py", "link.py", "sub", "sub/keep.tmp"]
            assert members["link.py"].issym() and members["link.py"].linkname == "app.py"
            assert tf.extractfile("app.py").read() == b"print('hi')\n"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="more than 5 bytes"):
        tar_context(ctx, max_bytes=5)
    with pytest.raises(ValueError, match="not a directory"):
        tar_context(tmp_path / "app.py")


def test_build_from_steps_as_json(mode: str, stub: Any) -> None:
    stub.replies = [
        Reply(202, {"template": TEMPLATE, "build": build_json("building")}),
        sse((0, "log", line(0, "step 1/2: RUN echo hi: cached")), (0, "log", line(1, "step 2/2: ENV A=1")),
            (0, "end", build_json("ready", steps=[
                {"index": 0, "key": "k0", "cached": True, "exit_code": 0, "duration_ms": 1},
                {"index": 1, "key": "k1", "cached": False, "exit_code": 0, "duration_ms": 5}]))),
    ]
    seen: List[str] = []
    b = run(mode, stub, lambda t: t.build(
        "app", from_template="base", steps=[BuildStep.run("echo hi"), BuildStep.env({"A": "1"}, force=True)],
        start_cmd="srv", ready=ReadyCheck(port=8080, timeout=30), env={"E": "x"}, timeout=120,
        on_log=lambda l: seen.append(l.message)))
    assert b.state == "ready" and b.done and b.cached_steps == [0] and b.steps[1].duration_ms == 5
    assert seen == ["step 1/2: RUN echo hi: cached", "step 2/2: ENV A=1"]
    first, follow = stub.requests
    assert first.method == "POST" and first.path == "/v1/templates"
    assert json.loads(first.body) == {
        "name": "app", "from_template": "base", "start_cmd": "srv", "env": {"E": "x"}, "timeout": 120,
        "ready": {"port": 8080, "timeout": 30},
        "steps": [{"type": "RUN", "args": ["echo hi"]}, {"type": "ENV", "args": ["A", "1"], "force": True}]}
    assert follow.path == "/v1/templates/app/builds/bld_1/logs?offset=0"
    assert follow.headers.get("Accept") == "text/event-stream"


def test_build_from_a_dockerfile_and_context(mode: str, stub: Any, tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    stub.replies = [Reply(202, {"template": TEMPLATE, "build": build_json("waiting")})]
    b = run(mode, stub, lambda t: t.build("app", context=ctx, build_args={"V": "1"}, wait=False))
    assert b.state == "waiting" and b.build_id == "bld_1"
    parts = multipart(stub)
    assert json.loads(parts["spec"]) == {"name": "app", "build_args": {"V": "1"}}
    assert parts["dockerfile"] == b"FROM base\nCOPY . /srv/\n"
    with tarfile.open(fileobj=io.BytesIO(parts["context"])) as tf:
        assert sorted(tf.getnames()) == [".dockerignore", "app.py", "link.py", "sub", "sub/keep.tmp"]


def test_build_refusals(mode: str, stub: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        run(mode, stub, lambda t: t.build("app", dockerfile_text="FROM base\n", from_template="base"))
    with pytest.raises(ValueError, match="Dockerfile"):
        run(mode, stub, lambda t: t.build("app", context=tmp_path))  # no Dockerfile in it
    assert stub.requests == []
    stub.replies = [error(400, "invalid", "Dockerfile line 2: HEALTHCHECK is not supported", field="dockerfile")]
    with pytest.raises(warren_invalid()) as ei:
        run(mode, stub, lambda t: t.build("app", dockerfile_text="FROM base\nHEALTHCHECK NONE\n"))
    assert "line 2" in str(ei.value) and ei.value.field == "dockerfile"


def warren_invalid() -> Any:
    from warren import InvalidArgumentError

    return InvalidArgumentError


def test_failed_build_raises_build_error(mode: str, stub: Any) -> None:
    reason = "step 2 (RUN 'echo boom; exit 3') failed with exit code 3; its last output:\nboom"
    stub.replies = [
        Reply(202, {"template": TEMPLATE, "build": build_json("building")}),
        sse((0, "log", line(0, "step 1/2: RUN true: cached")), (0, "log", line(1, "step 2/2: RUN echo boom; exit 3")),
            (0, "log", line(2, "boom")), (0, "log", line(3, "build failed: " + reason, "error")),
            (0, "end", build_json("error", reason=reason))),
    ]
    with pytest.raises(BuildError) as ei:
        run(mode, stub, lambda t: t.build("app", from_template="base", steps=[BuildStep.run("true")]))
    e = ei.value
    assert (e.step, e.exit_code, e.template_id, e.build_id) == (2, 3, "app", "bld_1")
    assert e.last_lines == ["step 1/2: RUN true: cached", "step 2/2: RUN echo boom; exit 3", "boom"]
    assert "exit code 3" in str(e) and e.build.state == "error"


def test_follow_error_event_and_cut_stream(mode: str, stub: Any) -> None:
    stub.replies = [sse((0, "log", line(0, "x")), (0, "error", {"code": "not_found", "message": "no build bld_1"}))]
    with pytest.raises(NotFoundError, match="no build"):
        run(mode, stub, lambda t: t.follow("app", "bld_1"))
    stub.replies = [sse((0, "log", line(5, "x")))]
    with pytest.raises(ConnectionError, match="from offset 6"):
        run(mode, stub, lambda t: t.follow("app", "bld_1", offset=5))


def test_list_get_logs_delete(mode: str, stub: Any) -> None:
    stub.replies = [
        Reply(200, {"templates": [dict(TEMPLATE, id="base", builtin=True, ready=True), TEMPLATE]}),
        Reply(200, dict(TEMPLATE, start_cmd="srv")),
        Reply(200, {"builds": [build_json("error", reason="r"), build_json("ready")]}),
        Reply(200, {"lines": [line(3, "l3")], "next_offset": 4, "state": "ready"}),
        Reply(200, build_json("ready")),
        Reply(204),
        error(404, "not_found", "template nope not found"),
    ]

    def ops(t: Any) -> Any:
        if isinstance(t, Templates):
            return [t.list(), t.get("app"), t.list_builds("app"), t.logs("app", "bld_1", 3), t.get_build("app", "bld_1"),
                    t.delete("app"), t.delete("nope")]

        async def go() -> Any:
            return [await t.list(), await t.get("app"), await t.list_builds("app"), await t.logs("app", "bld_1", 3),
                    await t.get_build("app", "bld_1"), await t.delete("app"), await t.delete("nope")]
        return go()

    ts, tpl, builds, logs, b, deleted, missing = run(mode, stub, ops)
    assert [t.builtin for t in ts] == [True, False] and tpl.start_cmd == "srv"
    assert [x.state for x in builds] == ["error", "ready"] and builds[0].reason == "r"
    assert logs.next_offset == 4 and logs.lines[0].message == "l3" and logs.state == "ready"
    assert b.state == "ready" and deleted is True and missing is False
    assert [r.path for r in stub.requests] == [
        "/v1/templates", "/v1/templates/app", "/v1/templates/app/builds", "/v1/templates/app/builds/bld_1/logs?offset=3",
        "/v1/templates/app/builds/bld_1", "/v1/templates/app", "/v1/templates/nope"]
