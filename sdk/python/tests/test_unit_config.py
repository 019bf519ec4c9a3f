"""Configuration, the SSE decoder, Retry-After parsing and request building."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest

import warren
from warren import _routes as R
from warren._config import resolve_config
from warren._http import SSEDecoder, iter_events, parse_retry_after
from warren._shared import exec_body, stdin_body


def test_config_from_env(monkeypatch: Any) -> None:
    monkeypatch.setenv("WARREN_API_URL", "http://10.0.0.1:3000/")
    monkeypatch.setenv("WARREN_API_KEY", "sk_env")
    monkeypatch.setenv("WARREN_DOMAIN", "sbx.example.com")
    c = resolve_config()
    assert (c.api_url, c.api_key, c.domain) == ("http://10.0.0.1:3000", "sk_env", "sbx.example.com")
    c = resolve_config("https://api.example.com", "sk_arg", domain="d.example.com", max_retries=0)
    assert (c.api_url, c.api_key, c.domain, c.max_retries) == ("https://api.example.com", "sk_arg", "d.example.com", 0)


def test_config_needs_a_key(monkeypatch: Any) -> None:
    monkeypatch.delenv("WARREN_API_KEY", raising=False)
    with pytest.raises(warren.ConfigError, match="WARREN_API_KEY"):
        resolve_config("http://127.0.0.1:3000")


def test_domain_is_only_an_explicit_override(monkeypatch: Any) -> None:
    """The sandbox domain comes from the server; the config holds only an override, never
    a guess from WARREN_PROXY_URL or a loopback API URL."""
    for v in ("WARREN_DOMAIN", "WARREN_PROXY_URL"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("WARREN_PROXY_URL", "http://127.0.0.1:3901")
    assert resolve_config("http://127.0.0.1:3000", "sk").domain is None
    monkeypatch.setenv("WARREN_DOMAIN", "sbx.example.com")
    assert resolve_config("http://127.0.0.1:3000", "sk").domain == "sbx.example.com"
    assert resolve_config("http://127.0.0.1:3000", "sk", domain="d.example").domain == "d.example"


def test_sse_decoder_across_chunks() -> None:
    raw = b'event: start\ndata: {"pid": 1}\n\n: keep-alive\n\nevent: stdout\r\ndata: {"text":"a'
    rest = b'b"}\r\n\r\nevent: end\ndata: {"exit_code": 0}'
    d = SSEDecoder()
    first = list(d.feed(raw))
    assert [(e.event, e.data) for e in first] == [("start", {"pid": 1})]
    second = list(d.feed(rest)) + list(d.flush())
    assert [(e.event, e.data) for e in second] == [("stdout", {"text": "ab"}), ("end", {"exit_code": 0})]


def test_sse_multiline_and_plain_data() -> None:
    evs = list(iter_events([b"data: a\ndata: b\n\n", b"event: x\ndata: [1,\n", b"data: 2]\n\n"]))
    assert [(e.event, e.data) for e in evs] == [("message", "a\nb"), ("x", [1, 2])]


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    date = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= (parse_retry_after(date) or 0) <= 10


def test_route_body_refuses_undeclared_fields() -> None:
    with pytest.raises(KeyError):
        R.CREATE_SANDBOX.body(templat="base")
    with pytest.raises(KeyError):
        R.LIST_FILES.params(pth="/")
    assert R.LIST_SANDBOXES.params(**{"metadata.owner": "a", "state": None}) == {"metadata.owner": "a"}
    assert R.GET_SANDBOX.url(id="a/b") == "/v1/sandboxes/a%2Fb"


@pytest.mark.parametrize("kw,want", [
    ({}, {"cmd": "cat", "stream": True}),
    ({"stdin": "x", "timeout": 2}, {"cmd": "cat", "stdin": "x", "timeout": 2, "stream": True}),
    ({"background": True}, {"cmd": "cat", "background": True}),
    ({"background": True, "stdin": True}, {"cmd": "cat", "background": True, "stdin_open": True}),
    ({"background": True, "stdin": b"\x00"}, {"cmd": "cat", "background": True, "stdin_base64": "AA=="}),
    ({"stdin": False}, {"cmd": "cat", "stream": True}),
], ids=["foreground", "foreground-stdin", "background", "background-stdin-open", "background-bytes", "stdin-false"])
def test_exec_body(kw: Any, want: Any) -> None:
    assert exec_body("cat", **kw) == want


def test_stdin_body() -> None:
    assert stdin_body("hi") == {"data": "hi"}
    assert stdin_body(b"\xff\x00") == {"data_base64": "/wA="}
    assert stdin_body("") is None and stdin_body(b"") is None
    with pytest.raises(TypeError):
        stdin_body(3)  # type: ignore[arg-type]


def test_timeouts_round_up_and_reject_negatives() -> None:
    assert exec_body("x", timeout=0.2)["timeout"] == 1
    with pytest.raises(ValueError):
        exec_body("x", timeout=-1)


def test_the_installed_package_is_tested() -> None:
    """Under the Go test (which sets WARREN_SDK_EXPECT_INSTALLED to the virtualenv), the
    suite must exercise the package pip installed, not the source tree."""
    import os

    venv = os.environ.get("WARREN_SDK_EXPECT_INSTALLED")
    if not venv:
        pytest.skip("only checked when run by test/e2e (WARREN_SDK_EXPECT_INSTALLED)")
    assert os.path.realpath(warren.__file__).startswith(os.path.realpath(venv) + os.sep), warren.__file__


def test_public_surface_has_docstrings_and_type_hints() -> None:
    """Every public class, function, method and property of the package is documented and
    fully annotated."""
    import inspect

    problems = []
    for name in warren.__all__:
        obj = getattr(warren, name)
        if not inspect.isclass(obj) and not inspect.isfunction(obj):
            continue
        if not (obj.__doc__ or "").strip():
            problems.append(f"{name}: no docstring")
        members = [(name, obj)] if inspect.isfunction(obj) else [
            (f"{name}.{m}", v) for m, v in vars(obj).items()
            if not m.startswith("_") or m in ("__init__", "__enter__", "__exit__", "__aenter__", "__aexit__")]
        for qual, member in members:
            fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if not inspect.isfunction(fn):
                continue
            if not qual.split(".")[-1].startswith("__") and not (fn.__doc__ or "").strip():
                problems.append(f"{qual}: no docstring")
            sig = inspect.signature(fn)
            for p in sig.parameters.values():
                if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty:
                    problems.append(f"{qual}: parameter {p.name} has no type hint")
            if sig.return_annotation is inspect.Signature.empty and not qual.endswith("__init__"):
                problems.append(f"{qual}: no return type")
    assert not problems, "\n".join(problems)
