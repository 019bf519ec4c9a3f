"""Commands of a synchronous :class:`~warren.Sandbox`: run in the foreground, or in the
background with a handle; list the sandbox's processes and attach to them."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, List, Literal, Mapping, Optional, Union, overload

import httpx

from . import _errors as E
from . import _routes as R
from ._shared import Cmd, CommandStream, Stdin, exec_body, killed_error, outcome, pid_of, stdin_body
from .models import PROCESS_LIST, PROCESS_STARTED, CommandResult, ProcessInfo

if TYPE_CHECKING:  # pragma: no cover
    from ._sync import Sandbox

__all__ = ["Commands", "CommandHandle"]

OutputCallback = Callable[[str], Any]


class Commands:
    """Runs commands in a sandbox and manages its processes: ``sbx.commands``."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._sbx = sandbox

    @overload
    def run(self, cmd: Cmd, *, background: Literal[False] = ..., on_stdout: Optional[OutputCallback] = ...,
            on_stderr: Optional[OutputCallback] = ..., stdin: Stdin = ..., env: Optional[Mapping[str, str]] = ...,
            cwd: Optional[str] = ..., user: Optional[str] = ..., timeout: Optional[float] = ...,
            check: bool = ...) -> CommandResult: ...

    @overload
    def run(self, cmd: Cmd, *, background: Literal[True], on_stdout: Optional[OutputCallback] = ...,
            on_stderr: Optional[OutputCallback] = ..., stdin: Stdin = ..., env: Optional[Mapping[str, str]] = ...,
            cwd: Optional[str] = ..., user: Optional[str] = ..., timeout: Optional[float] = ...,
            check: bool = ...) -> "CommandHandle": ...

    def run(
        self,
        cmd: Cmd,
        *,
        background: bool = False,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        stdin: Stdin = None,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        user: Optional[str] = None,
        timeout: Optional[float] = None,
        check: bool = True,
    ) -> Union[CommandResult, "CommandHandle"]:
        """Run a command and wait for it, or start it in the background.

        Args:
            cmd: A shell command line (run with bash -c), or an argv list run directly.
            background: Start the command and return a :class:`CommandHandle` attached to
                its output. The handle receives what the command prints from the moment
                it attached, when this call returns; output printed in the first
                milliseconds, before that, may be missed (the API does not replay it).
            on_stdout, on_stderr: Called with each chunk of output as it arrives (in a
                background thread when background=True).
            stdin: Text or bytes written to the command's stdin (then closed); or True, with
                background=True, to keep stdin open for :meth:`CommandHandle.send_stdin`.
            env: Extra environment variables.
            cwd: Working directory.
            user: "user" (default) or "root".
            timeout: Seconds before the command is killed. Default: the server's (10 min)
                in the foreground, no limit in the background.
            check: Raise CommandExitError for a non-zero exit code (default).

        Returns:
            The :class:`~warren.models.CommandResult`, or a :class:`CommandHandle`.

        Raises:
            CommandExitError: The command exited non-zero (with check=True).
            TimeoutError: The command was killed at its timeout (``result`` holds its output).
            ConflictError: The sandbox is not running, or stopped while the command ran.
        """
        body = exec_body(cmd, env=env, cwd=cwd, user=user, stdin=stdin, timeout=timeout, background=background)
        if background:
            data = self._sbx._http.json(R.START_PROCESS, {"id": self._sbx.id}, json=body)
            pid = PROCESS_STARTED.read(data)["pid"]
            try:
                return self.connect(pid, on_stdout=on_stdout, on_stderr=on_stderr, check=check)
            except E.WarrenError as err:
                err.add_note(f"the command runs as process {pid}: attach with commands.connect({pid}) "
                             f"or stop it with commands.kill({pid})")
                raise
        h = CommandHandle._open(self._sbx, R.EXEC_COMMAND, {"id": self._sbx.id}, body, on_stdout, on_stderr, check)
        return h.wait()

    def connect(self, pid: int, *, on_stdout: Optional[OutputCallback] = None,
                on_stderr: Optional[OutputCallback] = None, check: bool = True) -> "CommandHandle":
        """Attach to a running process (a background command started by any client, see
        :meth:`list`) and follow its output: a background command started through the API
        is replayed from its start (the server keeps its first 256 KiB and last 768 KiB),
        other processes are followed from now on.

        Args:
            pid: The process id.
            on_stdout, on_stderr: Called with each chunk of output, in a background thread.
            check: Make :meth:`CommandHandle.wait` raise CommandExitError for a non-zero exit.

        Raises:
            NotFoundError: No such process runs in the sandbox (or it ended more than 30 s ago).
        """
        path = {"id": self._sbx.id, "pid": pid_of(pid)}
        h = CommandHandle._open(self._sbx, R.PROCESS_EVENTS, path, None, on_stdout, on_stderr, check)
        h._run_in_thread()
        return h

    def list(self) -> List[ProcessInfo]:
        """The processes running in the sandbox that were started through the API
        (commands, background commands, terminals) or by its template."""
        data = self._sbx._http.json(R.LIST_PROCESSES, {"id": self._sbx.id})
        processes: List[ProcessInfo] = PROCESS_LIST.read(data)["processes"]
        return processes

    def kill(self, pid: int) -> bool:
        """Kill a process and its process group (SIGKILL). Returns True if it was running,
        False if no such process runs."""
        try:
            self._sbx._http.send(R.SIGNAL_PROCESS, {"id": self._sbx.id, "pid": pid_of(pid)},
                                 json=R.SIGNAL_PROCESS.body(signal="KILL"))
        except E.NotFoundError:
            return False
        return True

    def send_stdin(self, pid: int, data: Union[str, bytes]) -> None:
        """Write text or bytes to a process's stdin.

        Raises:
            ConflictError: Its stdin is not open (start it with ``background=True,
                stdin=True``, and do not close it first).
            NotFoundError: No such process runs.
        """
        body = stdin_body(data)
        if body is not None:
            self._sbx._http.send(R.SEND_STDIN, {"id": self._sbx.id, "pid": pid_of(pid)}, json=body)

    def close_stdin(self, pid: int) -> None:
        """Close a process's stdin: it reads end-of-file.

        Raises:
            ConflictError: Its stdin is not open.
            NotFoundError: No such process runs.
        """
        self._sbx._http.send(R.CLOSE_STDIN, {"id": self._sbx.id, "pid": pid_of(pid)})


class CommandHandle:
    """A command followed through its output stream: one started with
    ``background=True``, or attached to with ``commands.connect(pid)``. Output callbacks
    run in a background thread that reads the stream.

    The process keeps running when the handle is dropped or disconnected; it ends when
    it exits, is killed, reaches its timeout or the sandbox stops.
    """

    def __init__(self) -> None:
        """Use ``sbx.commands.run(..., background=True)`` or ``sbx.commands.connect(pid)``."""
        self._sbx: "Sandbox"
        self._resp: httpx.Response
        self._events: Any
        self._st = CommandStream()
        self._done = threading.Event()
        self._error: Optional[BaseException] = None
        self._callbacks: Mapping[str, Optional[OutputCallback]] = {}
        self._check = True
        self._thread: Optional[threading.Thread] = None

    @classmethod
    def _open(cls, sbx: "Sandbox", route: R.Route, path: Mapping[str, str], body: Optional[Mapping[str, Any]],
              on_stdout: Optional[OutputCallback], on_stderr: Optional[OutputCallback],
              check: bool) -> "CommandHandle":
        """Open the command's event stream (a streamed command, or the events of a
        process) and read up to its start event, so that errors before that are raised
        here and pid is known."""
        h = cls()
        h._sbx, h._check = sbx, check
        h._callbacks = {"stdout": on_stdout, "stderr": on_stderr}
        h._resp = sbx._http.send(route, path, json=body, headers={"Accept": "text/event-stream"}, stream=True)
        h._events = sbx._http.events(h._resp, f"command in sandbox {sbx.id}")
        try:
            for ev in h._events:
                out = h._st.apply(ev)
                if out is not None and out[0] == "start":
                    break
                if out is not None and out[0] == "end":  # pragma: no cover - start comes first
                    h._finish(None)
                    break
            else:
                raise CommandStream.unfinished()
        except BaseException:
            h._resp.close()
            raise
        sbx._track(h)
        return h

    def _pump(self) -> None:
        """Read the rest of the stream, calling the callbacks; record how it ended. After
        the end event the stream is read to its close, so that the connection goes back
        to the pool instead of being dropped."""
        err: Optional[BaseException] = None
        ended = False
        try:
            for ev in self._events:
                if ended:
                    continue
                out = self._st.apply(ev)
                if out is None:
                    continue
                kind, payload = out
                if kind == "end":
                    ended = True
                    self._finish(None)
                    continue
                cb = self._callbacks.get(kind)
                if cb is not None:
                    cb(payload)
            if not ended:
                err = CommandStream.unfinished()
        except BaseException as e:  # recorded for wait(); a callback's error ends the handle
            err = e
        finally:
            try:
                self._resp.close()
            except Exception:
                pass
        self._finish(err)

    def _finish(self, err: Optional[BaseException]) -> None:
        """Record how the handle ended, once (disconnect() or a kill of the sandbox may
        have ended it first)."""
        if self._done.is_set():
            return
        self._error = killed_error(err, self._sbx)
        self._done.set()

    def _run_in_thread(self) -> None:
        self._thread = threading.Thread(target=self._pump, name=f"warren-cmd-{self.pid}", daemon=True)
        self._thread.start()

    def _abort(self, err: BaseException) -> None:
        """End the handle now with err (used when the sandbox is killed)."""
        if self._done.is_set():
            return
        self._error = err
        self._done.set()
        from ._sync import shutdown_socket

        shutdown_socket(self._resp)

    # --- public -----------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The process id inside the sandbox (also its process group id)."""
        return int(self._st.pid or 0)

    @property
    def stdout(self) -> str:
        """Standard output received so far."""
        return self._st.stdout_text()

    @property
    def stderr(self) -> str:
        """Standard error received so far."""
        return self._st.stderr_text()

    @property
    def exit_code(self) -> Optional[int]:
        """The exit code once the command ended, else None."""
        return self._st.result.exit_code if self._st.result else None

    @property
    def done(self) -> bool:
        """Whether the command ended (or the handle stopped following it)."""
        return self._done.is_set()

    def wait(self, timeout: Optional[float] = None) -> CommandResult:
        """Wait for the command to end and return its result.

        Args:
            timeout: Seconds to wait at most (default: as long as it takes).

        Raises:
            CommandExitError: It exited non-zero (unless run with check=False); a command
                killed by :meth:`kill` has exit_code -1.
            TimeoutError: timeout passed first, or the command was killed at its own
                timeout (then ``result`` holds its output).
            ConflictError: The sandbox stopped while the command ran.
            SandboxKilledError: The sandbox was killed through this client meanwhile.
        """
        if self._thread is None and not self._done.is_set():
            self._pump()  # foreground: read in the caller's thread
        if not self._done.wait(timeout):
            raise E.TimeoutError(f"command {self.pid} still running after {timeout}s")
        if self._error is not None:
            raise self._error
        res = self._st.result
        if res is None:
            raise E.WarrenError(f"stopped following command {self.pid} (disconnect) before it ended; "
                                "attach again with commands.connect(pid)")
        return outcome(res, self._check)

    def kill(self) -> bool:
        """Kill the command and its children (SIGKILL to its process group). Returns True
        if it was running, False if it had already ended."""
        if self._st.result is not None:
            return False
        return self._sbx.commands.kill(self.pid)

    def send_stdin(self, data: Union[str, bytes]) -> None:
        """Write text or bytes to the command's stdin. The command must have been started
        with ``background=True, stdin=True``.

        Raises:
            ConflictError: stdin is not open (or was closed).
            NotFoundError: The command ended.
        """
        self._sbx.commands.send_stdin(self.pid, data)

    def close_stdin(self) -> None:
        """Close the command's stdin: it reads end-of-file."""
        self._sbx.commands.close_stdin(self.pid)

    def disconnect(self) -> None:
        """Stop receiving the command's output. The command keeps running; attach again
        with ``commands.connect(pid)``."""
        if self._done.is_set():
            return
        self._done.set()
        from ._sync import shutdown_socket

        shutdown_socket(self._resp)

    def __repr__(self) -> str:
        state = "running" if not self.done else f"exit_code={self.exit_code}"
        return f"CommandHandle(pid={self.pid}, {state})"
