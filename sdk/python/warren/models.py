"""The SDK's data types: sandboxes, command results, files, code executions.

Objects decoded from the API declare the OpenAPI schema and the keys they read in a
``WIRE`` class attribute (see :mod:`warren._wire`).
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Dict, List, Mapping, Optional

from ._wire import (
    Wire,
    list_of,
    to_b64,
    to_bool,
    to_dict,
    to_float,
    to_int,
    to_list,
    to_opt_float,
    to_opt_str,
    to_str,
    to_time,
)

__all__ = [
    "Limits",
    "SandboxInfo",
    "SandboxPage",
    "SnapshotInfo",
    "SnapshotPage",
    "Template",
    "FileInfo",
    "CommandResult",
    "ProcessInfo",
    "PortInfo",
    "CodeContext",
    "Result",
    "Logs",
    "ExecutionError",
    "Execution",
    "OutputMessage",
]


@dataclass(frozen=True)
class Limits:
    """Resources a sandbox may use; 0 means the server's default.

    Attributes:
        cpu_cores: CPU cores (may be fractional).
        memory_mb: Memory in MiB.
        disk_mb: Writable disk in MiB.
        max_processes: Maximum number of processes.
    """

    cpu_cores: float = 0
    memory_mb: int = 0
    disk_mb: int = 0
    max_processes: int = 0

    WIRE: ClassVar[Wire] = Wire("Limits", {
        "cpu_cores": ("cpu_cores", to_float),
        "memory_mb": ("memory_mb", to_int),
        "disk_mb": ("disk_mb", to_int),
        "max_processes": ("max_processes", to_int),
    })

    @classmethod
    def from_json(cls, data: Optional[Mapping[str, Any]]) -> "Limits":
        """Decode a Limits object; None gives all defaults."""
        return cls(**cls.WIRE.read(data or {}))

    def to_json(self) -> Dict[str, Any]:
        """The JSON object the API takes."""
        return {
            "cpu_cores": self.cpu_cores,
            "memory_mb": self.memory_mb,
            "disk_mb": self.disk_mb,
            "max_processes": self.max_processes,
        }


@dataclass(frozen=True)
class NetworkPolicy:
    """A sandbox's egress policy. Allow beats deny: a connection is allowed when its
    address is in an ``allow_out`` entry or its name matches one; otherwise denied when
    it matches ``deny_out``; otherwise it follows the sandbox's internet access.
    ``deny_out=["0.0.0.0/0"]`` with an ``allow_out`` list means "only these".

    Attributes:
        allow_out: IPv4 addresses, CIDR prefixes, domain names or ``*.wildcards``
            always allowed.
        deny_out: The same kinds of entries, denied unless ``allow_out`` names them.
    """

    allow_out: List[str] = field(default_factory=list)
    deny_out: List[str] = field(default_factory=list)

    WIRE: ClassVar[Wire] = Wire("NetworkPolicy", {
        "allow_out": ("allow_out", to_list),
        "deny_out": ("deny_out", to_list),
    })

    @classmethod
    def from_json(cls, data: Optional[Mapping[str, Any]]) -> "NetworkPolicy":
        """Decode a policy; None (no policy) gives empty lists."""
        return cls(**cls.WIRE.read(data or {}))

    def to_json(self) -> Dict[str, Any]:
        """The JSON object the API takes."""
        return {"allow_out": list(self.allow_out), "deny_out": list(self.deny_out)}


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox as the API describes it.

    Attributes:
        sandbox_id: The sandbox's id (20 characters of [a-z0-9]).
        team_id: The owning team.
        template: The template it started from.
        state: "starting", "running", "paused", "stopped" or "error".
        end_reason: Why a stopped sandbox ended (killed, timeout, lost, error: ...).
        metadata: The labels given at creation.
        env_keys: Names of its environment variables (values are never returned).
        internet: Whether outbound internet access is enabled.
        limits: Its resource limits.
        runtime: The runtime driver (gvisor, runc, ...).
        created_at, started_at, ends_at, stopped_at: Lifecycle times (UTC).
        domain: Where its ports are reached through the proxy,
            ``http://<port>-<id>.<domain>/``; None when the server has no proxy domain.
        paused_at: When it was last paused (None if never).
        on_timeout: What happens at its timeout: "kill" or "pause".
        auto_resume: Whether traffic through the proxy resumes it while paused.
        network: Its egress policy (empty lists: none).
        node: The node it was created on (None for sandboxes from before the
            server kept a node table).
    """

    sandbox_id: str
    team_id: str
    template: str
    state: str
    end_reason: Optional[str]
    metadata: Dict[str, str]
    env_keys: List[str]
    internet: bool
    limits: Limits
    runtime: Optional[str]
    created_at: Optional[datetime]
    started_at: Optional[datetime]
    ends_at: Optional[datetime]
    stopped_at: Optional[datetime]
    domain: Optional[str] = None
    paused_at: Optional[datetime] = None
    on_timeout: str = "kill"
    auto_resume: bool = False
    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    node: Optional[str] = None

    WIRE: ClassVar[Wire] = Wire("Sandbox", {
        "sandbox_id": ("id", to_str),
        "team_id": ("team_id", to_str),
        "template": ("template", to_str),
        "state": ("state", to_str),
        "end_reason": ("end_reason", to_opt_str),
        "metadata": ("metadata", to_dict),
        "env_keys": ("env_keys", to_list),
        "internet": ("internet", to_bool),
        "limits": ("limits", Limits.from_json),
        "runtime": ("runtime", to_opt_str),
        "created_at": ("created_at", to_time),
        "started_at": ("started_at", to_time),
        "ends_at": ("ends_at", to_time),
        "stopped_at": ("stopped_at", to_time),
        "domain": ("domain", to_opt_str),
        "paused_at": ("paused_at", to_time),
        "on_timeout": ("lifecycle", lambda v: str((v or {}).get("on_timeout") or "kill")),
        "auto_resume": ("lifecycle", lambda v: bool((v or {}).get("auto_resume"))),
        "network": ("network", NetworkPolicy.from_json),
        "node": ("node", to_opt_str),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SandboxInfo":
        """Decode a Sandbox object."""
        return cls(**cls.WIRE.read(data))

    @property
    def is_running(self) -> bool:
        """True while the sandbox is starting or running."""
        return self.state in ("starting", "running")

    @property
    def is_paused(self) -> bool:
        """True while the sandbox is paused (see ``Sandbox.resume``)."""
        return self.state == "paused"


@dataclass(frozen=True)
class SandboxPage:
    """One page of a sandbox listing."""

    sandboxes: List[SandboxInfo]
    next_cursor: str

    WIRE: ClassVar[Wire] = Wire("SandboxList", {
        "sandboxes": ("sandboxes", list_of(SandboxInfo.from_json)),
        "next_cursor": ("next_cursor", to_str),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SandboxPage":
        """Decode a SandboxList object."""
        return cls(**cls.WIRE.read(data))


@dataclass(frozen=True)
class Template:
    """A sandbox template.

    Attributes:
        template_id: Its id, e.g. "base" or "code-interpreter".
        description: What is in it.
        ready: Whether sandboxes can be made from it now.
        built_at: When it was built.
        size_bytes: Its size on disk.
        builtin: Every team sees it (the server built it); else it is the team's own.
        start_cmd: The command its sandboxes start with, if any.
    """

    template_id: str
    description: str
    ready: bool
    built_at: Optional[datetime]
    size_bytes: int
    builtin: bool = False
    start_cmd: Optional[str] = None

    WIRE: ClassVar[Wire] = Wire("Template", {
        "template_id": ("id", to_str),
        "description": ("description", to_str),
        "ready": ("ready", to_bool),
        "built_at": ("built_at", to_time),
        "size_bytes": ("size_bytes", to_int),
        "builtin": ("builtin", to_bool),
        "start_cmd": ("start_cmd", to_opt_str),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Template":
        """Decode a Template object."""
        return cls(**cls.WIRE.read(data))


TEMPLATE_LIST = Wire("TemplateList", {"templates": ("templates", list_of(Template.from_json))})


@dataclass(frozen=True)
class SnapshotInfo:
    """A sandbox saved at one instant, memory and files, which new sandboxes start from
    (``Sandbox.create(snapshot=...)``). Deleting it does not affect them.

    Attributes:
        snapshot_id: Its id ("snap_...").
        name: Its name, unique in the team, which creates may give instead of the id
            (None when it has none).
        sandbox_id: The sandbox it was taken of.
        template: That sandbox's template; sandboxes started from it use the same.
        runtime: That sandbox's runtime.
        size_bytes: What it takes on the server's disk.
        created_at: When it was taken.
    """

    snapshot_id: str
    name: Optional[str]
    sandbox_id: str
    template: str
    runtime: Optional[str]
    size_bytes: int
    created_at: Optional[datetime]

    WIRE: ClassVar[Wire] = Wire("Snapshot", {
        "snapshot_id": ("id", to_str),
        "name": ("name", to_opt_str),
        "sandbox_id": ("sandbox_id", to_str),
        "template": ("template_id", to_str),
        "runtime": ("runtime", to_opt_str),
        "size_bytes": ("size_bytes", to_int),
        "created_at": ("created_at", to_time),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SnapshotInfo":
        """Decode a Snapshot object."""
        return cls(**cls.WIRE.read(data))


@dataclass(frozen=True)
class SnapshotPage:
    """One page of a snapshot listing."""

    snapshots: List[SnapshotInfo]
    next_cursor: str

    WIRE: ClassVar[Wire] = Wire("SnapshotList", {
        "snapshots": ("snapshots", list_of(SnapshotInfo.from_json)),
        "next_cursor": ("next_cursor", to_str),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SnapshotPage":
        """Decode a SnapshotList object."""
        return cls(**cls.WIRE.read(data))


FORK_FAILURE = Wire("ForkError", {"index": ("index", to_int), "status": ("status", to_int), "code": ("code", to_str),
                                  "message": ("message", to_str)})
FORK_LIST = Wire("ForkResponse", {"sandboxes": ("sandboxes", list_of(SandboxInfo.from_json)),
                                  "errors": ("errors", list_of(FORK_FAILURE.read))})


@dataclass(frozen=True)
class FileInfo:
    """A file or directory in a sandbox.

    Attributes:
        name: Base name.
        path: Absolute path.
        type: "file", "dir" or "symlink".
        size: Size in bytes.
        mode: Unix permission bits.
        owner, group: Owner and group names, when known.
        modified: Last modification time.
    """

    name: str
    path: str
    type: str
    size: int
    mode: int
    owner: Optional[str] = None
    group: Optional[str] = None
    modified: Optional[datetime] = None

    WIRE: ClassVar[Wire] = Wire("FileInfo", {
        "name": ("name", to_str),
        "path": ("path", to_str),
        "type": ("type", to_str),
        "size": ("size", to_int),
        "mode": ("mode", to_int),
        "owner": ("owner", to_opt_str),
        "group": ("group", to_opt_str),
        "modified": ("modified", to_time),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FileInfo":
        """Decode a FileInfo object."""
        return cls(**cls.WIRE.read(data))

    @property
    def is_dir(self) -> bool:
        """True for directories."""
        return self.type == "dir"


FILE_LIST = Wire("FileList", {"entries": ("entries", list_of(FileInfo.from_json))})


@dataclass(frozen=True)
class CommandResult:
    """How a command ended and what it printed.

    Attributes:
        exit_code: The exit code; -1 when a signal killed it (or its timeout did).
        stdout, stderr: The output decoded as UTF-8 (invalid bytes replaced). For a
            background command, what its handle received (from when it attached).
        error: The server's description of how it ended ("exit status 3",
            "signal: killed"), or None.
        pid: The process id inside the sandbox.
        stdout_bytes, stderr_bytes: The exact bytes.
        timed_out: True when the command was killed at its timeout.
    """

    exit_code: int
    stdout: str
    stderr: str
    error: Optional[str] = None
    pid: Optional[int] = None
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the exit code is 0."""
        return self.exit_code == 0


@dataclass(frozen=True)
class ProcessInfo:
    """A process running in a sandbox, as ``commands.list()`` reports it.

    Attributes:
        pid: Its process id; pass it to ``commands.connect``, ``kill``, ``send_stdin``.
        cmd: The program (/bin/bash for a command given as a shell line).
        args: Its arguments (["-c", line] for a shell line).
        cwd: Its working directory.
        tag: The name of a special process (e.g. the template's start command), or None.
    """

    pid: int
    cmd: str
    args: List[str]
    cwd: str
    tag: Optional[str] = None

    WIRE: ClassVar[Wire] = Wire("Process", {
        "pid": ("pid", to_int),
        "cmd": ("cmd", to_str),
        "args": ("args", to_list),
        "cwd": ("cwd", to_str),
        "tag": ("tag", to_opt_str),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ProcessInfo":
        """Decode a Process object."""
        return cls(**cls.WIRE.read(data))


PROCESS_LIST = Wire("ProcessList", {"processes": ("processes", list_of(ProcessInfo.from_json))})
PROCESS_STARTED = Wire("ProcessStarted", {"pid": ("pid", to_int)})


@dataclass(frozen=True)
class PortInfo:
    """A TCP port listening in a sandbox.

    Attributes:
        port: The port number.
        url: Where it is reached through Warren's proxy (``http://<port>-<id>.<domain>/``),
            or None when the server has no proxy domain.
    """

    port: int
    url: Optional[str] = None

    WIRE: ClassVar[Wire] = Wire("Port", {"port": ("port", to_int), "url": ("url", to_opt_str)})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PortInfo":
        """Decode a Port object."""
        return cls(**cls.WIRE.read(data))


PORT_LIST = Wire("PortList", {"ports": ("ports", list_of(PortInfo.from_json))})


@dataclass(frozen=True)
class CodeContext:
    """A code interpreter context: its own interpreter state and working directory.

    Attributes:
        id: The context id, for ``run_code(context=...)``.
        language: "python", "javascript", "bash", ...
        cwd: Its working directory.
    """

    id: str
    language: str
    cwd: str

    WIRE: ClassVar[Wire] = Wire("CodeContext", {
        "id": ("id", to_str),
        "language": ("language", to_str),
        "cwd": ("cwd", to_str),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CodeContext":
        """Decode a CodeContext object."""
        return cls(**cls.WIRE.read(data))


CONTEXT_LIST = Wire("CodeContextList", {"contexts": ("contexts", list_of(CodeContext.from_json))})


def _any(v: Any) -> Any:
    return v


@dataclass(frozen=True)
class Result:
    """One output of a cell: its value (``is_main_result``) or a display output such as a
    plot. Each MIME representation it has is an attribute; the others are None.

    Attributes:
        text: text/plain.
        html, markdown, svg, latex, javascript: Those representations, as text.
        png, jpeg, pdf: Those representations, decoded to bytes.
        json: application/json, decoded.
        data: Tabular data the interpreter extracted.
        chart: A chart the interpreter extracted from a plot.
        extra: Other MIME types, by MIME type.
        is_main_result: True for the cell's value, False for display outputs.
    """

    is_main_result: bool = False
    text: Optional[str] = None
    html: Optional[str] = None
    markdown: Optional[str] = None
    svg: Optional[str] = None
    png: Optional[bytes] = None
    jpeg: Optional[bytes] = None
    pdf: Optional[bytes] = None
    latex: Optional[str] = None
    json: Any = None
    javascript: Optional[str] = None
    data: Optional[Dict[str, Any]] = None
    chart: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    WIRE: ClassVar[Wire] = Wire("CodeResultLine", {
        "is_main_result": ("is_main_result", to_bool),
        "text": "text",
        "html": "html",
        "markdown": "markdown",
        "svg": "svg",
        "png": ("png", to_b64),
        "jpeg": ("jpeg", to_b64),
        "pdf": ("pdf", to_b64),
        "latex": "latex",
        "json": ("json", _any),
        "javascript": "javascript",
        "data": "data",
        "chart": "chart",
        "extra": ("extra", to_dict),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Result":
        """Decode a result line (or a CodeResult object)."""
        return cls(**cls.WIRE.read(data))

    def formats(self) -> List[str]:
        """The names of the representations this result has, e.g. ["text", "png"]."""
        names = ["text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json",
                 "javascript", "data", "chart"]
        out = [n for n in names if getattr(self, n) is not None]
        out.extend(self.extra.keys())
        return out

    def __str__(self) -> str:
        return self.text if self.text is not None else ", ".join(self.formats())


@dataclass
class Logs:
    """What a cell printed, chunk by chunk."""

    stdout: List[str] = field(default_factory=list)
    stderr: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExecutionError:
    """The exception a cell raised.

    Attributes:
        name: Exception class name, e.g. "ZeroDivisionError".
        value: Its message.
        traceback: The formatted traceback (may contain ANSI colours).
    """

    name: str
    value: str
    traceback: str

    WIRE: ClassVar[Wire] = Wire("CodeErrorLine", {
        "name": ("name", to_str),
        "value": ("value", to_str),
        "traceback": ("traceback", lambda v: "\n".join(v) if isinstance(v, list) else to_str(v)),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ExecutionError":
        """Decode an interpreter error line."""
        return cls(**cls.WIRE.read(data))


@dataclass(frozen=True)
class OutputMessage:
    """One chunk a cell printed, as passed to ``on_stdout``/``on_stderr`` of run_code.

    Attributes:
        line: The text.
        timestamp: When the interpreter saw it (ISO 8601), if it says.
        error: True for standard error.
    """

    line: str
    timestamp: Optional[str] = None
    error: bool = False

    WIRE: ClassVar[Wire] = Wire("CodeOutputLine", {
        "line": ("text", to_str),
        "timestamp": ("timestamp", to_opt_str),
    })

    def __str__(self) -> str:
        return self.line


@dataclass
class Execution:
    """The outcome of running a cell.

    Attributes:
        results: The cell's outputs, in order; the main result is the cell's value.
        logs: What it printed.
        error: The exception it raised, or None.
        execution_count: The interpreter's execution counter.
    """

    results: List[Result] = field(default_factory=list)
    logs: Logs = field(default_factory=Logs)
    error: Optional[ExecutionError] = None
    execution_count: Optional[int] = None

    @property
    def text(self) -> Optional[str]:
        """The text of the main result (the cell's value), or None."""
        for r in self.results:
            if r.is_main_result:
                return r.text
        return None

    def to_json(self) -> str:
        """A JSON summary (binary outputs are listed by format, not included)."""
        return _json.dumps({
            "results": [r.formats() for r in self.results],
            "text": self.text,
            "stdout": self.logs.stdout,
            "stderr": self.logs.stderr,
            "error": None if self.error is None else {"name": self.error.name, "value": self.error.value},
            "execution_count": self.execution_count,
        })


# Wire shapes of the streamed events, decoded into plain dicts by the clients.
EXEC_START = Wire("ExecStartEvent", {"pid": ("pid", to_int)})
EXEC_OUTPUT = Wire("ExecOutputEvent", {"data": ("data", to_b64), "text": ("text", to_str)})
EXEC_END = Wire("ExecEndEvent", {"exit_code": ("exit_code", to_int), "error": ("error", to_opt_str),
                                  "timed_out": ("timed_out", to_bool)})
CODE_EXECUTION_COUNT = Wire("CodeNumberOfExecutionsLine", {"execution_count": "execution_count"})
ERROR_BODY = Wire("Error", {
    "code": ("code", to_str),
    "message": ("message", to_str),
    "request_id": ("request_id", to_str),
    "field": ("field", to_opt_str),
    "quota": ("quota", to_opt_str),
    "limit": ("limit", to_opt_float),
    "used": ("used", to_opt_float),
    "retry_after": ("retry_after", to_opt_float),
})
