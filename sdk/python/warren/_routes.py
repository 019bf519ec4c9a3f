"""The one list of /v1 routes the SDK calls, with the request fields, query parameters,
response schemas and Server-Sent Event names it uses.

tests/test_openapi_drift.py checks every entry against the server's OpenAPI document
(internal/api/rest/openapi.json), so that a route, field or event the SDK depends on
cannot change on the server without a failing test. Request bodies are built only
through :meth:`Route.body`, which refuses fields not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import quote

__all__ = ["Route", "ROUTES"]


@dataclass(frozen=True)
class Route:
    """One endpoint as the SDK uses it.

    Attributes:
        name: A short identifier used in logs and tests.
        method: HTTP method.
        path: OpenAPI path template, e.g. "/v1/sandboxes/{id}".
        status: The success status the SDK expects.
        also: Other success statuses the SDK handles (e.g. 200 beside 201).
        request: Name of the JSON request body schema, if any.
        request_fields: The body fields the SDK may send (a subset of the schema's).
        query: The query parameters the SDK may send.
        response: Name of the JSON response schema the SDK decodes, if any.
        events: SSE event name -> schema name, for streamed responses.
    """

    name: str
    method: str
    path: str
    status: int = 200
    also: Tuple[int, ...] = ()
    request: Optional[str] = None
    request_fields: Tuple[str, ...] = ()
    query: Tuple[str, ...] = ()
    response: Optional[str] = None
    events: Mapping[str, str] = field(default_factory=dict)

    def url(self, **params: str) -> str:
        """Fill in the path template; every value is percent-encoded."""
        out = self.path
        for k, v in params.items():
            token = "{" + k + "}"
            if token not in out:
                raise KeyError(f"route {self.name} has no path parameter {k}")
            out = out.replace(token, quote(str(v), safe=""))
        if "{" in out:
            raise KeyError(f"route {self.name}: missing path parameters in {out}")
        return out

    def body(self, **fields: Any) -> Dict[str, Any]:
        """Build the JSON body, dropping None values. A field this route does not declare
        is a bug in the SDK and raises, so that the drift test sees every field sent."""
        unknown = set(fields) - set(self.request_fields)
        if unknown:
            raise KeyError(f"route {self.name} does not declare request fields {sorted(unknown)}")
        return {k: v for k, v in fields.items() if v is not None}

    def params(self, **params: Any) -> Dict[str, Any]:
        """Build the query parameters, dropping None values; metadata.KEY stands for any
        parameter named metadata.<something>."""
        out = {}
        for k, v in params.items():
            if v is None:
                continue
            declared = "metadata.KEY" if k.startswith("metadata.") else k
            if declared not in self.query:
                raise KeyError(f"route {self.name} does not declare query parameter {k}")
            out[k] = v
        return out


_EXEC_EVENTS = {
    "start": "ExecStartEvent",
    "stdout": "ExecOutputEvent",
    "stderr": "ExecOutputEvent",
    "end": "ExecEndEvent",
    "error": "Error",
}

_CODE_EVENTS = {
    "number_of_executions": "CodeNumberOfExecutionsLine",
    "stdout": "CodeOutputLine",
    "stderr": "CodeOutputLine",
    "result": "CodeResultLine",
    "error": "CodeStreamError",
    "end_of_execution": "CodeEndLine",
    "unexpected_end_of_execution": "CodeEndLine",
}

CREATE_SANDBOX = Route(
    "create_sandbox", "POST", "/v1/sandboxes", status=201,
    request="CreateSandboxRequest",
    request_fields=("template", "timeout", "env", "metadata", "internet", "limits", "runtime", "min_isolation",
                    "snapshot", "lifecycle", "network"),
    response="Sandbox",
)
LIST_SANDBOXES = Route(
    "list_sandboxes", "GET", "/v1/sandboxes",
    query=("state", "limit", "cursor", "metadata.KEY"), response="SandboxList",
)
GET_SANDBOX = Route("get_sandbox", "GET", "/v1/sandboxes/{id}", response="Sandbox")
KILL_SANDBOX = Route("kill_sandbox", "DELETE", "/v1/sandboxes/{id}", status=204)
SET_TIMEOUT = Route(
    "set_timeout", "POST", "/v1/sandboxes/{id}/timeout",
    request="SetTimeoutRequest", request_fields=("timeout",), response="Sandbox",
)
SET_NETWORK = Route(
    "set_network", "PUT", "/v1/sandboxes/{id}/network",
    request="NetworkPolicy", request_fields=("allow_out", "deny_out"), response="Sandbox",
)
EXEC_COMMAND = Route(
    "exec_command", "POST", "/v1/sandboxes/{id}/commands",
    request="ExecRequest",
    request_fields=("cmd", "args", "env", "cwd", "user", "stdin", "stdin_base64", "timeout", "stream"),
    events=_EXEC_EVENTS,
)
START_PROCESS = Route(
    "start_process", "POST", "/v1/sandboxes/{id}/commands", status=201,
    request="ExecRequest",
    request_fields=("cmd", "args", "env", "cwd", "user", "stdin", "stdin_base64", "timeout", "background",
                    "stdin_open"),
    response="ProcessStarted",
)
LIST_PROCESSES = Route("list_processes", "GET", "/v1/sandboxes/{id}/processes", response="ProcessList")
PROCESS_EVENTS = Route("process_events", "GET", "/v1/sandboxes/{id}/processes/{pid}/events", events=_EXEC_EVENTS)
SEND_STDIN = Route(
    "send_stdin", "POST", "/v1/sandboxes/{id}/processes/{pid}/stdin", status=204,
    request="StdinRequest", request_fields=("data", "data_base64"),
)
CLOSE_STDIN = Route("close_stdin", "POST", "/v1/sandboxes/{id}/processes/{pid}/stdin/close", status=204)
SIGNAL_PROCESS = Route(
    "signal_process", "POST", "/v1/sandboxes/{id}/processes/{pid}/signal", status=204,
    request="SignalRequest", request_fields=("signal",),
)
LIST_PORTS = Route("list_ports", "GET", "/v1/sandboxes/{id}/ports", response="PortList")
RUN_CODE = Route(
    "run_code", "POST", "/v1/sandboxes/{id}/execute",
    request="RunCodeRequest",
    request_fields=("code", "language", "context_id", "env", "timeout", "stream"),
    events=_CODE_EVENTS,
)
CREATE_CONTEXT = Route(
    "create_code_context", "POST", "/v1/sandboxes/{id}/contexts", status=201,
    request="CreateCodeContextRequest", request_fields=("language", "cwd"), response="CodeContext",
)
LIST_CONTEXTS = Route("list_code_contexts", "GET", "/v1/sandboxes/{id}/contexts", response="CodeContextList")
DELETE_CONTEXT = Route("delete_code_context", "DELETE", "/v1/sandboxes/{id}/contexts/{context_id}", status=204)
RESTART_CONTEXT = Route("restart_code_context", "POST", "/v1/sandboxes/{id}/contexts/{context_id}/restart", status=204)
WRITE_FILE = Route(
    "write_file", "PUT", "/v1/sandboxes/{id}/files/content", query=("path", "user"), response="FileInfo",
)
READ_FILE = Route("read_file", "GET", "/v1/sandboxes/{id}/files/content", query=("path", "user"))
LIST_FILES = Route(
    "list_files", "GET", "/v1/sandboxes/{id}/files", query=("path", "user", "depth"), response="FileList",
)
STAT_FILE = Route("stat_file", "GET", "/v1/sandboxes/{id}/files/stat", query=("path", "user"), response="FileInfo")
MAKE_DIR = Route(
    "make_dir", "POST", "/v1/sandboxes/{id}/files/dir", status=201, also=(200,), query=("path", "user"),
    response="FileInfo",
)
MOVE_FILE = Route(
    "move_file", "POST", "/v1/sandboxes/{id}/files/move", query=("user",),
    request="MoveRequest", request_fields=("from", "to"), response="FileInfo",
)
DELETE_FILE = Route("delete_file", "DELETE", "/v1/sandboxes/{id}/files", status=204, query=("path", "user"))
LIST_TEMPLATES = Route("list_templates", "GET", "/v1/templates", response="TemplateList")
BUILD_TEMPLATE = Route(
    "build_template", "POST", "/v1/templates", status=202,
    request="BuildRequest",
    request_fields=("name", "from_template", "from_image", "steps", "start_cmd", "ready", "env", "workdir", "user",
                    "timeout", "build_args"),
    response="BuildStarted",
)
GET_TEMPLATE = Route("get_template", "GET", "/v1/templates/{id}", response="Template")
DELETE_TEMPLATE = Route("delete_template", "DELETE", "/v1/templates/{id}", status=204)
LIST_BUILDS = Route("list_builds", "GET", "/v1/templates/{id}/builds", response="BuildList")
GET_BUILD = Route("get_build", "GET", "/v1/templates/{id}/builds/{build}", response="Build")
BUILD_LOGS = Route("build_logs", "GET", "/v1/templates/{id}/builds/{build}/logs", query=("offset",), response="BuildLogs")
FOLLOW_BUILD = Route(
    "follow_build", "GET", "/v1/templates/{id}/builds/{build}/logs", query=("offset",),
    events={"log": "BuildLogLine", "end": "Build", "error": "Error"},
)
PAUSE_SANDBOX = Route("pause_sandbox", "POST", "/v1/sandboxes/{id}/pause", response="Sandbox")
RESUME_SANDBOX = Route(
    "resume_sandbox", "POST", "/v1/sandboxes/{id}/resume",
    request="ResumeRequest", request_fields=("timeout",), response="Sandbox",
)
FORK_SANDBOX = Route(
    "fork_sandbox", "POST", "/v1/sandboxes/{id}/fork", status=201,
    request="ForkRequest", request_fields=("count", "timeout"), response="ForkResponse",
)
CREATE_SNAPSHOT = Route(
    "create_snapshot", "POST", "/v1/sandboxes/{id}/snapshots", status=201,
    request="CreateSnapshotRequest", request_fields=("name",), response="Snapshot",
)
LIST_SNAPSHOTS = Route(
    "list_snapshots", "GET", "/v1/snapshots", query=("sandbox_id", "limit", "cursor"), response="SnapshotList",
)
GET_SNAPSHOT = Route("get_snapshot", "GET", "/v1/snapshots/{id}", response="Snapshot")
DELETE_SNAPSHOT = Route("delete_snapshot", "DELETE", "/v1/snapshots/{id}", status=204)

ROUTES: Tuple[Route, ...] = (
    CREATE_SANDBOX, LIST_SANDBOXES, GET_SANDBOX, KILL_SANDBOX, SET_TIMEOUT, SET_NETWORK, LIST_PORTS,
    EXEC_COMMAND, START_PROCESS, LIST_PROCESSES, PROCESS_EVENTS, SEND_STDIN, CLOSE_STDIN, SIGNAL_PROCESS,
    RUN_CODE, CREATE_CONTEXT, LIST_CONTEXTS, DELETE_CONTEXT, RESTART_CONTEXT,
    WRITE_FILE, READ_FILE, LIST_FILES, STAT_FILE, MAKE_DIR, MOVE_FILE, DELETE_FILE, LIST_TEMPLATES,
    BUILD_TEMPLATE, GET_TEMPLATE, DELETE_TEMPLATE, LIST_BUILDS, GET_BUILD, BUILD_LOGS, FOLLOW_BUILD,
    PAUSE_SANDBOX, RESUME_SANDBOX, FORK_SANDBOX, CREATE_SNAPSHOT, LIST_SNAPSHOTS, GET_SNAPSHOT, DELETE_SNAPSHOT,
)
"""Every route the SDK calls."""
