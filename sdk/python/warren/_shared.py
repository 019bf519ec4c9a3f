"""Request building and stream interpretation shared by the sync and async clients."""

from __future__ import annotations

import base64
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _errors as E
from ._http import SSEEvent, error_from_body, stream_error
from ._routes import CREATE_SANDBOX, EXEC_COMMAND, RUN_CODE, SEND_STDIN, SET_NETWORK, START_PROCESS
from .models import (
    CODE_EXECUTION_COUNT,
    EXEC_END,
    EXEC_OUTPUT,
    EXEC_START,
    CommandResult,
    Execution,
    ExecutionError,
    Limits,
    NetworkPolicy,
    OutputMessage,
    Result,
    SandboxInfo,
)

Cmd = Union[str, Sequence[str]]
Stdin = Union[str, bytes, bytearray, memoryview, bool, None]
LimitsArg = Union[Limits, Mapping[str, Any], None]
NetworkArg = Union[NetworkPolicy, Mapping[str, Any], None]


def seconds(v: Optional[float], name: str) -> Optional[int]:
    """A timeout in whole seconds (rounded up), as the API takes; None stays None."""
    if v is None:
        return None
    if v < 0:
        raise ValueError(f"{name} must not be negative")
    return int(math.ceil(v))


def limits_json(limits: LimitsArg) -> Optional[Dict[str, Any]]:
    """Limits as the API takes them."""
    if limits is None:
        return None
    if isinstance(limits, Limits):
        return limits.to_json()
    allowed = {"cpu_cores", "memory_mb", "disk_mb", "max_processes"}
    unknown = set(limits) - allowed
    if unknown:
        raise ValueError(f"unknown limits {sorted(unknown)}; use {sorted(allowed)}")
    return {k: limits.get(k, 0) for k in sorted(allowed)}


def entries(v: Any, name: str) -> Optional[List[str]]:
    """A list of policy entries: strings only (a lone string is refused, not split)."""
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not all(isinstance(e, str) for e in v):
        raise ValueError(f"{name} must be a list of strings (addresses, CIDR prefixes or domain names)")
    return list(v)


def network_json(network: NetworkArg) -> Optional[Dict[str, Any]]:
    """An egress policy as the API takes it."""
    if network is None:
        return None
    if isinstance(network, NetworkPolicy):
        return network.to_json()
    unknown = set(network) - {"allow_out", "deny_out"}
    if unknown:
        raise ValueError(f"unknown network policy fields {sorted(unknown)}; use allow_out and deny_out")
    return {k: entries(network.get(k), k) or [] for k in ("allow_out", "deny_out")}


def set_network_body(allow_out: Optional[Sequence[str]], deny_out: Optional[Sequence[str]]) -> Dict[str, Any]:
    """The body of PUT /v1/sandboxes/{id}/network: the whole new policy."""
    return SET_NETWORK.body(allow_out=entries(allow_out, "allow_out") or [], deny_out=entries(deny_out, "deny_out") or [])


def create_body(
    template: Optional[str], timeout: Optional[float], env: Optional[Mapping[str, str]],
    metadata: Optional[Mapping[str, str]], limits: LimitsArg, internet: Optional[bool],
    runtime: Optional[str], min_isolation: Optional[str], snapshot: Optional[str] = None,
    on_timeout: Optional[str] = None, auto_resume: Optional[bool] = None, network: NetworkArg = None,
) -> Dict[str, Any]:
    """The body of POST /v1/sandboxes."""
    if snapshot is not None and template is not None:
        raise ValueError("give template or snapshot, not both: a sandbox started from a snapshot "
                         "runs on the snapshot's template")
    if on_timeout not in (None, "kill", "pause"):
        raise ValueError(f"on_timeout must be \"kill\" or \"pause\", not {on_timeout!r}")
    lifecycle: Optional[Dict[str, Any]] = None
    if on_timeout is not None or auto_resume:
        lifecycle = {"on_timeout": on_timeout or "kill", "auto_resume": bool(auto_resume)}
    return CREATE_SANDBOX.body(
        template=template, timeout=seconds(timeout, "timeout"),
        env=dict(env) if env is not None else None,
        metadata=dict(metadata) if metadata is not None else None,
        limits=limits_json(limits), internet=internet, runtime=runtime, min_isolation=min_isolation,
        snapshot=snapshot, lifecycle=lifecycle, network=network_json(network),
    )


def fork_body(count: int, timeout: Optional[float]) -> Dict[str, Any]:
    """The body of POST /v1/sandboxes/{id}/fork."""
    from ._routes import FORK_SANDBOX

    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 20:
        raise ValueError(f"count must be a whole number from 1 to 20, not {count!r}")
    return FORK_SANDBOX.body(count=count, timeout=seconds(timeout, "timeout"))


def snapshot_params(sandbox_id: Optional[str], limit: Optional[int], cursor: Optional[str]) -> Dict[str, Any]:
    """Query parameters of GET /v1/snapshots."""
    from ._routes import LIST_SNAPSHOTS

    return LIST_SNAPSHOTS.params(sandbox_id=sandbox_id, limit=limit, cursor=cursor)


def list_params(state: Union[str, Sequence[str], None], metadata: Optional[Mapping[str, str]],
                limit: Optional[int], cursor: Optional[str]) -> Dict[str, Any]:
    """Query parameters of GET /v1/sandboxes."""
    from ._routes import LIST_SANDBOXES

    if isinstance(state, (list, tuple)):
        state = ",".join(state)
    md = {f"metadata.{k}": v for k, v in (metadata or {}).items()}
    return LIST_SANDBOXES.params(state=state, limit=limit, cursor=cursor, **md)


def _text_or_b64(data: Union[str, bytes, bytearray, memoryview, None]) -> Tuple[Optional[str], Optional[str]]:
    """(text, base64): text for str, base64 for bytes; empty input gives (None, None)."""
    if isinstance(data, str):
        return (data or None), None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return None, (base64.b64encode(bytes(data)).decode("ascii") if len(data) else None)
    if data is None:
        return None, None
    raise TypeError(f"expected text or bytes, got {type(data).__name__}")


def exec_body(
    cmd: Cmd, *, env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
    user: Optional[str] = None, stdin: Stdin = None, timeout: Optional[float] = None,
    background: bool = False,
) -> Dict[str, Any]:
    """The body of POST /v1/sandboxes/{id}/commands: streamed (SSE) in the foreground;
    with background, started at once (201 with the pid), stdin kept open if stdin is True."""
    shell: Optional[str]
    args: Optional[List[str]]
    if isinstance(cmd, str):
        if not cmd:
            raise ValueError("cmd must not be empty")
        shell, args = cmd, None
    else:
        args = [str(a) for a in cmd]
        if not args or not args[0]:
            raise ValueError("cmd as a list needs the program as its first item")
        shell = None
    keep_open = check_stdin(stdin, background)
    text, b64 = _text_or_b64(None if isinstance(stdin, bool) else stdin)
    common = dict(cmd=shell, args=args, env=dict(env) if env is not None else None, cwd=cwd, user=user,
                  stdin=text, stdin_base64=b64, timeout=seconds(timeout, "timeout"))
    if background:
        return START_PROCESS.body(background=True, stdin_open=True if keep_open else None, **common)
    return EXEC_COMMAND.body(stream=True, **common)


def stdin_body(data: Union[str, bytes, bytearray, memoryview]) -> Optional[Dict[str, Any]]:
    """The body of POST .../processes/{pid}/stdin, or None for empty data (nothing to send)."""
    text, b64 = _text_or_b64(data)
    if text is None and b64 is None:
        return None
    return SEND_STDIN.body(data=text, data_base64=b64)


def check_stdin(stdin: Stdin, background: bool) -> bool:
    """Whether stdin is to be kept open; stdin=True needs background=True."""
    if stdin is True:
        if not background:
            raise ValueError("stdin=True keeps the command's stdin open for send_stdin(); "
                             "it needs background=True (pass text or bytes to feed a foreground command)")
        return True
    return False


def outcome(res: CommandResult, check: bool) -> CommandResult:
    """res, or the error it stands for: TimeoutError when the command was killed at its
    timeout (whatever check says), CommandExitError for a non-zero exit with check."""
    if res.timed_out:
        raise E.TimeoutError(f"{res.error or 'the command was killed at its timeout'} (process {res.pid})",
                             result=res)
    if check and res.exit_code != 0:
        raise E.CommandExitError(res)
    return res


class CommandStream:
    """Interprets the events of a command stream. apply() returns ("start", pid),
    ("stdout", text), ("stderr", text), ("end", CommandResult) or None, and raises the
    error an "error" event carries."""

    def __init__(self) -> None:
        self.pid: Optional[int] = None
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.result: Optional[CommandResult] = None

    def apply(self, ev: SSEEvent) -> Optional[Tuple[str, Any]]:
        """Consume one event."""
        data = ev.data if isinstance(ev.data, dict) else {}
        if ev.event == "start":
            self.pid = EXEC_START.read(data)["pid"]
            return ("start", self.pid)
        if ev.event in ("stdout", "stderr"):
            f = EXEC_OUTPUT.read(data)
            raw = f["data"] if f["data"] is not None else f["text"].encode("utf-8")
            (self.stdout if ev.event == "stdout" else self.stderr).extend(raw)
            return (ev.event, f["text"])
        if ev.event == "end":
            f = EXEC_END.read(data)
            self.result = CommandResult(
                exit_code=f["exit_code"], error=f["error"], pid=self.pid, timed_out=f["timed_out"],
                stdout=self.stdout.decode("utf-8", "replace"), stderr=self.stderr.decode("utf-8", "replace"),
                stdout_bytes=bytes(self.stdout), stderr_bytes=bytes(self.stderr),
            )
            return ("end", self.result)
        if ev.event == "error":
            raise stream_error(data or {"code": "internal", "message": str(ev.data)})
        return None

    def stdout_text(self) -> str:
        """Standard output so far."""
        return self.stdout.decode("utf-8", "replace")

    def stderr_text(self) -> str:
        """Standard error so far."""
        return self.stderr.decode("utf-8", "replace")

    @staticmethod
    def unfinished() -> E.WarrenError:
        """The error for a stream that ended without an end or error event."""
        return E.ConnectionError("the command's output stream ended before the command did: "
                                 "the connection broke (the command may still run; attach again "
                                 "with commands.connect(pid))")


def run_code_body(code: str, language: Optional[str], context: Any, env: Optional[Mapping[str, str]],
                  timeout: Optional[float]) -> Dict[str, Any]:
    """The body of a streamed POST /v1/sandboxes/{id}/execute. context is a CodeContext
    or its id."""
    if not code:
        raise ValueError("code must not be empty")
    ctx_id = getattr(context, "id", context)
    if ctx_id is not None and language is not None:
        raise ValueError("pass either language (its default context) or context, not both")
    return RUN_CODE.body(code=code, language=language, context_id=ctx_id,
                         env=dict(env) if env is not None else None,
                         timeout=seconds(timeout, "timeout"), stream=True)


class CodeStream:
    """Interprets the events of a code execution stream into an Execution. apply()
    returns ("stdout"|"stderr", OutputMessage), ("result", Result), ("error",
    ExecutionError), ("end", None) or None; an "error" event that is not the cell's own
    exception raises."""

    def __init__(self) -> None:
        self.execution = Execution()
        self.done = False

    def apply(self, ev: SSEEvent) -> Optional[Tuple[str, Any]]:
        """Consume one event."""
        data = ev.data if isinstance(ev.data, dict) else {}
        ex = self.execution
        if ev.event == "number_of_executions":
            n = CODE_EXECUTION_COUNT.read(data)["execution_count"]
            ex.execution_count = int(n) if n is not None else None
        elif ev.event in ("stdout", "stderr"):
            f = OutputMessage.WIRE.read(data)
            msg = OutputMessage(f["line"], f["timestamp"], ev.event == "stderr")
            (ex.logs.stdout if ev.event == "stdout" else ex.logs.stderr).append(msg.line)
            return (ev.event, msg)
        elif ev.event == "result":
            r = Result.from_json(data)
            ex.results.append(r)
            return ("result", r)
        elif ev.event == "error":
            if "type" not in data:  # an Error body: running the cell failed
                raise error_from_body(data or {"code": "internal", "message": str(ev.data)})
            ex.error = ExecutionError.from_json(data)
            return ("error", ex.error)
        elif ev.event == "end_of_execution":
            self.done = True
            return ("end", None)
        elif ev.event == "unexpected_end_of_execution":
            self.done = True
            value = "the interpreter ended the execution unexpectedly (its kernel may have died); the context's state may be lost"
            ex.error = ExecutionError("UnexpectedEndOfExecution", value, value)
            return ("error", ex.error)
        return None


def context_id(context: Any) -> str:
    """The id of a CodeContext, or context itself if it is already an id."""
    return str(getattr(context, "id", context))


def killed_error(err: Optional[BaseException], sandbox: Any) -> Optional[BaseException]:
    """err, or SandboxKilledError if it is the conflict that ends a command stream because
    this client is killing the sandbox."""
    if isinstance(err, E.ConflictError) and getattr(sandbox, "_killing", False):
        killed = E.SandboxKilledError(f"sandbox {sandbox.id} was killed")
        killed.__cause__ = err
        return killed
    return err


def sandbox_domain(explicit: Optional[str], info: SandboxInfo) -> str:
    """The domain of a sandbox's hosts: the one configured explicitly (domain= or
    WARREN_DOMAIN), else the one the server reports with the sandbox."""
    dom = explicit or info.domain
    if not dom:
        raise E.ConfigError(
            f"the server reports no sandbox domain for sandbox {info.sandbox_id} (it runs without a proxy "
            "domain); pass domain=... or set WARREN_DOMAIN to the address of its sandbox traffic proxy")
    return dom


def host(port: int, sandbox_id: str, domain: str) -> str:
    """The host name of a sandbox port behind the proxy."""
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    return f"{port}-{sandbox_id}.{domain}"


def pid_of(pid: Any) -> str:
    """A process id as a path parameter."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"pid must be a positive integer, got {pid!r}")
    return str(pid)
