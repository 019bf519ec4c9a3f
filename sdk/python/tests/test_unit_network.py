"""Egress policies against the stub server, with both clients: create(network=...),
set_network, and the policy decoded from the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

import warren
from conftest import perform
from stub import SANDBOX, Reply, error
from test_unit_snapshots import klass
from warren import NetworkPolicy

POLICY = {"allow_out": ["198.18.0.7", "*.example.com"], "deny_out": ["0.0.0.0/0"]}


def body(stub: Any, i: int = 0) -> Any:
    raw = stub.requests[i].body
    return json.loads(raw) if raw else None


def test_set_network(mode: str, stub: Any) -> None:
    stub.script(Reply(200, {**SANDBOX, "network": POLICY}), Reply(200, SANDBOX))

    async def both_async(s: Any) -> Any:
        return await s.set_network(allow_out=POLICY["allow_out"], deny_out=POLICY["deny_out"]), await s.set_network()

    def both(s: Any) -> Any:
        if isinstance(s, warren.AsyncSandbox):
            return both_async(s)
        return s.set_network(allow_out=POLICY["allow_out"], deny_out=POLICY["deny_out"]), s.set_network()

    set_, cleared = perform(mode, stub, both)
    assert set_.network == NetworkPolicy(allow_out=POLICY["allow_out"], deny_out=POLICY["deny_out"])
    assert cleared.network == NetworkPolicy()
    assert [(r.method, r.path) for r in stub.requests] == [("PUT", f"/v1/sandboxes/{SANDBOX['id']}/network")] * 2
    assert body(stub, 0) == POLICY
    assert body(stub, 1) == {"allow_out": [], "deny_out": []}


def test_set_network_refused(mode: str, stub: Any) -> None:
    stub.script(error(400, "invalid", "network.allow_out: \"not a host\" is not an IPv4 address, prefix or name"))
    with pytest.raises(warren.InvalidArgumentError, match="not a host"):
        perform(mode, stub, lambda s: s.set_network(allow_out=["not a host"]))


@pytest.mark.parametrize("bad", [{"allow_out": "198.18.0.7"}, {"allowOut": ["198.18.0.7"]}, {"deny_out": [7]}])
def test_bad_policy_never_sent(mode: str, stub: Any, bad: Any) -> None:
    with pytest.raises(ValueError):
        klass(mode, stub, lambda cls, cfg: cls.create(network=bad, config=cfg))
    with pytest.raises(ValueError):
        perform(mode, stub, lambda s: s.set_network(**{"allow_out": "198.18.0.7"}))
    assert stub.requests == []


@pytest.mark.parametrize("given", [POLICY, NetworkPolicy(**POLICY)])
def test_create_with_network(mode: str, stub: Any, given: Any) -> None:
    stub.script(Reply(201, {**SANDBOX, "network": POLICY}))

    def create(cls: Any, cfg: Any) -> Any:
        return cls.create(network=given, internet=True, config=cfg)

    made = klass(mode, stub, create)
    assert made.info.network.allow_out == POLICY["allow_out"] and made.info.network.deny_out == POLICY["deny_out"]
    assert body(stub)["network"] == POLICY and body(stub)["internet"] is True
