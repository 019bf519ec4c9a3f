"""The SDK against the server's OpenAPI document (internal/api/rest/openapi.json, or
the file WARREN_OPENAPI names): every route, status, request field, query parameter,
response schema, stream event and decoded field the SDK uses must be documented there,
so that a change on either side that breaks the SDK fails here."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

import pytest

import warren  # noqa: F401  (registers every Wire)
from warren import _routes as R
from warren._wire import REGISTRY

DEFAULT_DOC = Path(__file__).resolve().parents[3] / "internal" / "api" / "rest" / "openapi.json"


@pytest.fixture(scope="module")
def doc() -> Dict[str, Any]:
    path = Path(os.environ.get("WARREN_OPENAPI") or DEFAULT_DOC)
    assert path.is_file(), f"OpenAPI document not found at {path}; set WARREN_OPENAPI"
    return json.loads(path.read_text())


def resolve(doc: Dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        cur: Any = doc
        for part in ref[2:].split("/"):
            cur = cur[part]
        node = cur
    return node


def ref_name(node: Any) -> Optional[str]:
    if isinstance(node, dict) and "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    return None


def operation(doc: Dict[str, Any], route: R.Route) -> Dict[str, Any]:
    item = doc["paths"].get(route.path)
    assert item is not None, f"{route.name}: path {route.path} is not in the OpenAPI document"
    op = item.get(route.method.lower())
    assert op is not None, f"{route.name}: {route.method} {route.path} is not in the OpenAPI document"
    return op


def properties(doc: Dict[str, Any], schema: Any) -> Set[str]:
    """The property names of a schema, through $ref, allOf and oneOf/anyOf (union)."""
    schema = resolve(doc, schema)
    out = set((schema.get("properties") or {}).keys())
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key, []):
            out |= properties(doc, sub)
    return out


@pytest.mark.parametrize("route", R.ROUTES, ids=[r.name for r in R.ROUTES])
def test_route(doc: Dict[str, Any], route: R.Route) -> None:
    op = operation(doc, route)
    responses = op.get("responses", {})
    for status in (route.status, *route.also):
        assert str(status) in responses, f"{route.name}: status {status} not documented ({sorted(responses)})"
    ok = resolve(doc, responses[str(route.status)])
    content = ok.get("content", {})

    if route.request is not None:
        body = resolve(doc, op.get("requestBody", {})).get("content", {}).get("application/json", {})
        assert ref_name(body.get("schema")) == route.request, f"{route.name}: request schema"
        props = properties(doc, body["schema"])
        missing = set(route.request_fields) - props
        assert not missing, f"{route.name}: SDK sends undocumented request fields {sorted(missing)}"
    else:
        assert not route.request_fields

    params = [resolve(doc, p) for p in doc["paths"][route.path].get("parameters", []) + op.get("parameters", [])]
    query = {p["name"] for p in params if p.get("in") == "query"}
    missing = set(route.query) - query
    assert not missing, f"{route.name}: SDK sends undocumented query parameters {sorted(missing)}"
    path_params = {p["name"] for p in params if p.get("in") == "path"}
    template = {seg[1:-1] for seg in route.path.split("/") if seg.startswith("{")}
    assert template <= path_params, f"{route.name}: path parameters {template - path_params} not documented"

    if route.response is not None:
        for status in (route.status, *route.also):
            js = resolve(doc, responses[str(status)]).get("content", {}).get("application/json", {})
            assert ref_name(js.get("schema")) == route.response, f"{route.name}: response schema for {status}"
    elif not route.events:
        assert route.status == 204 or "application/octet-stream" in content, \
            f"{route.name}: the SDK decodes no body, but {route.status} documents {sorted(content)}"

    if route.events:
        sse = content.get("text/event-stream")
        assert sse is not None, f"{route.name}: not documented as an event stream"
        documented = {name: ref_name(s) for name, s in sse.get("x-sse-events", {}).items()}
        for name, schema in route.events.items():
            assert name in documented, f"{route.name}: SSE event {name!r} not documented"
            assert documented[name] == schema, f"{route.name}: SSE event {name!r} is {documented[name]}, SDK expects {schema}"


@pytest.mark.parametrize("wire", REGISTRY, ids=[w.schema for w in REGISTRY])
def test_decoded_fields_are_documented(doc: Dict[str, Any], wire: Any) -> None:
    schemas = doc["components"]["schemas"]
    assert wire.schema in schemas, f"schema {wire.schema} is not in the OpenAPI document"
    props = properties(doc, schemas[wire.schema])
    missing = set(wire.keys) - props
    assert not missing, f"the SDK reads {sorted(missing)} from {wire.schema}, which the document does not define"


def test_every_route_is_unique_and_every_wire_is_used() -> None:
    # One path and method may be two routes with different answers (POST .../commands
    # streams in the foreground and answers 201 with a pid in the background; a build's
    # logs are a JSON page, or an event stream).
    keys: List[str] = [f"{r.method} {r.path} {r.status} {'events' if r.events else 'json'}" for r in R.ROUTES]
    assert len(keys) == len(set(keys))
    assert len({r.name for r in R.ROUTES}) == len(R.ROUTES)
    used = {r.response for r in R.ROUTES if r.response} | {s for r in R.ROUTES for s in r.events.values()}
    # Every response and event schema the routes name is decoded by some Wire, except
    # those the clients only pass through (the union of error shapes).
    decoded = {w.schema for w in REGISTRY} | {"CodeStreamError", "CodeEndLine"}
    assert used <= decoded, sorted(used - decoded)


def test_drift_is_detected(doc: Dict[str, Any]) -> None:
    """The checks above fail when the document loses something the SDK uses."""
    import copy

    from warren.models import SandboxInfo

    broken = copy.deepcopy(doc)
    del broken["components"]["schemas"]["Sandbox"]["properties"]["ends_at"]
    del broken["paths"]["/v1/sandboxes/{id}/timeout"]
    del broken["paths"]["/v1/sandboxes/{id}/commands"]["post"]["responses"]["200"]["content"]["text/event-stream"]["x-sse-events"]["end"]
    with pytest.raises(AssertionError, match="ends_at"):
        test_decoded_fields_are_documented(broken, SandboxInfo.WIRE)
    with pytest.raises(AssertionError, match="not in the OpenAPI document"):
        test_route(broken, R.SET_TIMEOUT)
    with pytest.raises(AssertionError, match="'end'"):
        test_route(broken, R.EXEC_COMMAND)

    # The routes of background processes and file operations.
    broken = copy.deepcopy(doc)
    del broken["components"]["schemas"]["ExecRequest"]["properties"]["stdin_open"]
    del broken["paths"]["/v1/sandboxes/{id}/files/dir"]["post"]["responses"]["200"]
    del broken["paths"]["/v1/sandboxes/{id}/processes/{pid}/signal"]["post"]["responses"]["204"]
    del broken["components"]["schemas"]["ExecEndEvent"]["properties"]["timed_out"]
    del broken["components"]["schemas"]["Sandbox"]["properties"]["domain"]
    broken["paths"]["/v1/sandboxes/{id}/processes/{pid}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["x-sse-events"]["stdout"] = {"$ref": "#/components/schemas/Error"}
    from warren.models import EXEC_END

    with pytest.raises(AssertionError, match="stdin_open"):
        test_route(broken, R.START_PROCESS)
    with pytest.raises(AssertionError, match="status 200"):
        test_route(broken, R.MAKE_DIR)
    with pytest.raises(AssertionError, match="status 204"):
        test_route(broken, R.SIGNAL_PROCESS)
    with pytest.raises(AssertionError, match="timed_out"):
        test_decoded_fields_are_documented(broken, EXEC_END)
    with pytest.raises(AssertionError, match="domain"):
        test_decoded_fields_are_documented(broken, SandboxInfo.WIRE)
    with pytest.raises(AssertionError, match="'stdout'"):
        test_route(broken, R.PROCESS_EVENTS)
