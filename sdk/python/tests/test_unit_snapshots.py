"""Pause, resume, fork and snapshots against the stub server, with both clients: the
requests sent and the answers decoded."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any, Callable

import pytest

import warren
from conftest import perform
from stub import SANDBOX, Reply, error
from warren import AsyncSandbox, Sandbox, resolve_config

SNAPSHOT = {"id": "snap_abcdefghij012345", "name": "warm", "sandbox_id": SANDBOX["id"], "template_id": "base",
            "runtime": "gvisor", "size_bytes": 1234, "created_at": "2026-01-02T03:04:05Z"}


def body(stub: Any, i: int = 0) -> Any:
    raw = stub.requests[i].body
    return json.loads(raw) if raw else None


def klass(mode: str, stub: Any, op: Callable[[Any, Any], Any]) -> Any:
    """Call a class method of Sandbox or AsyncSandbox: op(cls, config)."""
    cfg = resolve_config(stub.url, "sk_test", backoff=0.01)
    if mode == "sync":
        return op(Sandbox, cfg)

    async def go() -> Any:
        r = op(AsyncSandbox, cfg)
        return await r if inspect.isawaitable(r) else r

    return asyncio.run(go())


def test_pause_and_resume(mode: str, stub: Any) -> None:
    lifecycle = {"on_timeout": "pause", "auto_resume": True}
    stub.script(Reply(200, {**SANDBOX, "state": "paused", "paused_at": "2026-01-02T03:05:00Z", "lifecycle": lifecycle}),
                Reply(200, SANDBOX))

    async def both_async(s: Any) -> Any:
        return await s.pause(), s.info, await s.resume(timeout=59.5)

    def both(s: Any) -> Any:
        if isinstance(s, AsyncSandbox):
            return both_async(s)
        return s.pause(), s.info, s.resume(timeout=59.5)

    paused, info, resumed = perform(mode, stub, both)
    assert paused.state == "paused" and paused.is_paused and not paused.is_running and info.state == "paused"
    assert paused.paused_at is not None and paused.on_timeout == "pause" and paused.auto_resume
    assert resumed.state == "running" and resumed.is_running and resumed.on_timeout == "kill" and not resumed.auto_resume
    assert body(stub, 1) == {"timeout": 60}
    assert [(r.method, r.path) for r in stub.requests] == [
        ("POST", f"/v1/sandboxes/{SANDBOX['id']}/pause"), ("POST", f"/v1/sandboxes/{SANDBOX['id']}/resume")]


def test_pause_conflict(mode: str, stub: Any) -> None:
    stub.script(error(409, "conflict", "sandbox is paused: resume it first"))
    with pytest.raises(warren.ConflictError, match="resume it first"):
        perform(mode, stub, lambda s: s.pause())


def test_fork(mode: str, stub: Any) -> None:
    a, b = {**SANDBOX, "id": "f" * 20}, {**SANDBOX, "id": "g" * 20}
    stub.script(Reply(201, {"sandboxes": [a, b]}))

    async def fork_async(s: Any) -> Any:
        forks = await s.fork(2, timeout=90.5)
        ids = [f.id for f in forks]
        for f in forks:
            await f.close()
        return ids

    def fork(s: Any) -> Any:
        if isinstance(s, AsyncSandbox):
            return fork_async(s)
        forks = s.fork(2, timeout=90.5)
        for f in forks:
            assert isinstance(f, Sandbox) and f.info.state == "running"
            f.close()
        return [f.id for f in forks]

    assert perform(mode, stub, fork) == ["f" * 20, "g" * 20]
    assert stub.requests[0].path == f"/v1/sandboxes/{SANDBOX['id']}/fork"
    assert body(stub) == {"count": 2, "timeout": 91}


@pytest.mark.parametrize("count", [0, 21, -1, 1.5, True])
def test_fork_bad_count(mode: str, stub: Any, count: Any) -> None:
    with pytest.raises(ValueError, match="count must be a whole number from 1 to 20"):
        perform(mode, stub, lambda s: s.fork(count))
    assert stub.requests == []


def test_create_snapshot(mode: str, stub: Any) -> None:
    stub.script(Reply(201, SNAPSHOT), Reply(201, {**SNAPSHOT, "name": ""}))
    snap = perform(mode, stub, lambda s: s.create_snapshot("warm"))
    assert snap.snapshot_id == SNAPSHOT["id"] and snap.name == "warm" and snap.template == "base"
    assert snap.size_bytes == 1234 and snap.created_at is not None and snap.sandbox_id == SANDBOX["id"]
    assert stub.requests[0].path == f"/v1/sandboxes/{SANDBOX['id']}/snapshots" and body(stub) == {"name": "warm"}
    unnamed = perform(mode, stub, lambda s: s.create_snapshot())
    assert unnamed.name is None and body(stub, 1) == {}


def test_list_get_delete_snapshots(mode: str, stub: Any) -> None:
    second = {**SNAPSHOT, "id": "snap_0000000000000000", "name": ""}
    stub.script(Reply(200, {"snapshots": [SNAPSHOT], "next_cursor": "c1"}), Reply(200, {"snapshots": [second]}),
                Reply(200, SNAPSHOT), Reply(204), error(404, "not_found", "snapshot not found"))
    snaps = klass(mode, stub, lambda cls, cfg: cls.list_snapshots(sandbox_id=SANDBOX["id"], page_size=1, config=cfg))
    assert [s.snapshot_id for s in snaps] == [SNAPSHOT["id"], second["id"]]
    assert stub.requests[0].path == f"/v1/snapshots?sandbox_id={SANDBOX['id']}&limit=1"
    assert stub.requests[1].path.endswith("&cursor=c1")
    got = klass(mode, stub, lambda cls, cfg: cls.get_snapshot("warm", config=cfg))
    assert got.name == "warm" and stub.requests[2].path == "/v1/snapshots/warm"
    assert klass(mode, stub, lambda cls, cfg: cls.delete_snapshot(SNAPSHOT["id"], config=cfg)) is True
    assert stub.requests[3].method == "DELETE" and stub.requests[3].path == f"/v1/snapshots/{SNAPSHOT['id']}"
    assert klass(mode, stub, lambda cls, cfg: cls.delete_snapshot("gone", config=cfg)) is False


def test_create_from_snapshot_with_lifecycle(mode: str, stub: Any) -> None:
    stub.script(Reply(201, SANDBOX))

    def create(cls: Any, cfg: Any) -> Any:
        made = cls.create(snapshot="warm", on_timeout="pause", auto_resume=True, config=cfg)
        if cls is Sandbox:
            made.close()
            return made.id

        async def go() -> Any:
            s = await made
            await s.close()
            return s.id

        return go()

    assert klass(mode, stub, create) == SANDBOX["id"]
    assert body(stub) == {"snapshot": "warm", "lifecycle": {"on_timeout": "pause", "auto_resume": True}}


def test_create_argument_errors(mode: str, stub: Any) -> None:
    with pytest.raises(ValueError, match="template or snapshot, not both"):
        klass(mode, stub, lambda cls, cfg: cls.create("base", snapshot="warm", config=cfg))
    with pytest.raises(ValueError, match="on_timeout"):
        klass(mode, stub, lambda cls, cfg: cls.create(on_timeout="sleep", config=cfg))
    assert stub.requests == []


def test_fork_in_part(mode: str, stub: Any) -> None:
    a = {**SANDBOX, "id": "f" * 20}
    stub.script(Reply(201, {"sandboxes": [a], "errors": [
        {"index": 1, "status": 429, "code": "quota_exceeded", "message": "quota max_sandboxes exceeded"}]}))

    async def fork_async(s: Any) -> Any:
        try:
            await s.fork(2)
        except warren.ForkError as e:
            for f in e.sandboxes:
                await f.close()
            return e
        raise AssertionError("no ForkError")

    def fork(s: Any) -> Any:
        if isinstance(s, AsyncSandbox):
            return fork_async(s)
        with pytest.raises(warren.ForkError) as ei:
            s.fork(2)
        for f in ei.value.sandboxes:
            f.close()
        return ei.value

    err = perform(mode, stub, fork)
    assert [f.id for f in err.sandboxes] == ["f" * 20]
    assert err.failures == [{"index": 1, "status": 429, "code": "quota_exceeded", "message": "quota max_sandboxes exceeded"}]
    assert "1 of 2 copies did not start (copy 1: quota max_sandboxes exceeded)" in str(err)
