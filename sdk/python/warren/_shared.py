"""Request building and stream interpretation shared by the sync and async clients.

Background commands, stdin kept open, kill, remove and make_dir are done with small
helper commands run through POST /v1/sandboxes/{id}/commands, because /v1 has no routes
for them (see the SDK's README, "What the API lacks").
"""

from __future__ import annotations

import base64
import math
import posixpath
import secrets
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _errors as E
from ._http import SSEEvent, error_from_body, stream_error
from ._routes import CREATE_SANDBOX, EXEC_COMMAND, RUN_CODE
from .models import (
    CODE_EXECUTION_COUNT,
    EXEC_END,
    EXEC_OUTPUT,
    EXEC_START,
    CommandResult,
    Execution,
    ExecutionError,
    Limits,
    OutputMessage,
    Result,
)

Cmd = Union[str, Sequence[str]]
Stdin = Union[str, bytes, bytearray, memoryview, bool, None]
LimitsArg = Union[Limits, Mapping[str, Any], None]

# Exit status the helper scripts use for "does not exist" / "already exists".
HELPER_MISSING = 3

# Wraps a command so that its stdin is a FIFO kept open by a keeper process: send_stdin
# writes to the FIFO, close_stdin kills the keeper (the reader then sees EOF). The
# keeper is in the command's process group, so killing the group ends it too.
# $1 = FIFO directory, $2... = the command's argv.
STDIN_WRAPPER = (
    'd="$1"; shift; '
    'mkdir -m 700 -- "$d" && mkfifo -- "$d/in" || exit 125; '
    'sleep infinity > "$d/in" & echo $! > "$d/keeper"; '
    'exec "$@" < "$d/in"'
)
# $1 = FIFO directory. Waits up to 5 s for the wrapper to have made the FIFO.
STDIN_SEND = (
    'for _ in $(seq 100); do [ -p "$1/in" ] && break; sleep 0.05; done; '
    '[ -p "$1/in" ] || { echo "stdin of the command is closed" >&2; exit 3; }; '
    'cat > "$1/in"'
)
STDIN_CLOSE = (
    'for _ in $(seq 100); do [ -s "$1/keeper" ] && break; sleep 0.05; done; '
    '[ -s "$1/keeper" ] || exit 3; '
    'kill -KILL "$(cat "$1/keeper")" 2>/dev/null; rm -rf -- "$1"'
)
# $1 = pid (the process group leader), $2 = FIFO directory or "".
KILL_GROUP = (
    'if kill -KILL -- "-$1" 2>/dev/null || kill -KILL -- "$1" 2>/dev/null; then r=0; else r=1; fi; '
    'if [ -n "$2" ]; then rm -rf -- "$2"; fi; exit $r'
)
REMOVE = (
    '[ -e "$1" ] || [ -L "$1" ] || { echo "no such file or directory: $1" >&2; exit 3; }; '
    'rm -rf -- "$1"'
)
MAKE_DIR = '[ -e "$1" ] && exit 3; mkdir -p -- "$1"'


def helper(script: str, *args: str) -> List[str]:
    """argv running script with bash, with args as $1, $2, ..."""
    return ["/bin/bash", "-c", script, "warren", *args]


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


def create_body(
    template: Optional[str], timeout: Optional[float], env: Optional[Mapping[str, str]],
    metadata: Optional[Mapping[str, str]], limits: LimitsArg, internet: Optional[bool],
    runtime: Optional[str], min_isolation: Optional[str],
) -> Dict[str, Any]:
    """The body of POST /v1/sandboxes."""
    return CREATE_SANDBOX.body(
        template=template, timeout=seconds(timeout, "timeout"),
        env=dict(env) if env is not None else None,
        metadata=dict(metadata) if metadata is not None else None,
        limits=limits_json(limits), internet=internet, runtime=runtime, min_isolation=min_isolation,
    )


def list_params(state: Union[str, Sequence[str], None], metadata: Optional[Mapping[str, str]],
                limit: Optional[int], cursor: Optional[str]) -> Dict[str, Any]:
    """Query parameters of GET /v1/sandboxes."""
    from ._routes import LIST_SANDBOXES

    if isinstance(state, (list, tuple)):
        state = ",".join(state)
    md = {f"metadata.{k}": v for k, v in (metadata or {}).items()}
    return LIST_SANDBOXES.params(state=state, limit=limit, cursor=cursor, **md)


def exec_body(
    cmd: Cmd, *, env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
    user: Optional[str] = None, stdin: Stdin = None, timeout: Optional[float] = None,
    stdin_dir: Optional[str] = None,
) -> Dict[str, Any]:
    """The body of a streamed POST /v1/sandboxes/{id}/commands. With stdin_dir, the
    command is wrapped so that its stdin stays open (STDIN_WRAPPER)."""
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
    if stdin_dir is not None:
        argv = ["/bin/bash", "-c", shell] if shell is not None else list(args or [])
        shell, args = None, helper(STDIN_WRAPPER, stdin_dir, *argv)
    text = b64 = None
    if isinstance(stdin, str):
        text = stdin or None
    elif isinstance(stdin, (bytes, bytearray, memoryview)):
        b64 = base64.b64encode(bytes(stdin)).decode("ascii") if len(stdin) else None
    return EXEC_COMMAND.body(
        cmd=shell, args=args, env=dict(env) if env is not None else None, cwd=cwd, user=user,
        stdin=text, stdin_base64=b64, timeout=seconds(timeout, "timeout"), stream=True,
    )


def stdin_dir() -> str:
    """A fresh FIFO directory path for a command with stdin=True."""
    return "/tmp/.warren-stdin-" + secrets.token_hex(8)


def check_stdin(stdin: Stdin, background: bool) -> bool:
    """Whether stdin is to be kept open; stdin=True needs background=True."""
    if stdin is True:
        if not background:
            raise ValueError("stdin=True keeps the command's stdin open for send_stdin(); "
                             "it needs background=True (pass text or bytes to feed a foreground command)")
        return True
    return False


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
                exit_code=f["exit_code"], error=f["error"], pid=self.pid,
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
        return E.ConnectionError("the command's output stream ended before the command did; "
                                 "the sandbox may have stopped or the connection broke")


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


def parent_and_name(path: str) -> Tuple[str, str]:
    """Split a sandbox path into its directory and base name, for exists()."""
    p = posixpath.normpath(path)
    parent, name = posixpath.split(p)
    return parent or ".", name


def host(port: int, sandbox_id: str, domain: str) -> str:
    """The host name of a sandbox port behind the proxy."""
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    return f"{port}-{sandbox_id}.{domain}"
