"""Commands of a synchronous :class:`~warren.Sandbox`: run in the foreground or in the
background with a handle."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Optional, Union, overload

import httpx

from . import _errors as E
from . import _routes as R
from ._shared import (
    KILL_GROUP,
    STDIN_CLOSE,
    STDIN_SEND,
    Cmd,
    CommandStream,
    Stdin,
    check_stdin,
    exec_body,
    helper,
    stdin_dir,
)
from .models import CommandResult

if TYPE_CHECKING:  # pragma: no cover
    from ._sync import Sandbox

__all__ = ["Commands", "CommandHandle"]

OutputCallback = Callable[[str], Any]


class Commands:
    """Runs commands in a sandbox: ``sbx.commands``."""

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
            background: Return a :class:`CommandHandle` as soon as the command started.
            on_stdout, on_stderr: Called with each chunk of output as it arrives (in a
                background thread when background=True).
            stdin: Text or bytes written to the command's stdin (then closed); or True, with
                background=True, to keep stdin open for :meth:`CommandHandle.send_stdin`.
            env: Extra environment variables.
            cwd: Working directory.
            user: "user" (default) or "root".
            timeout: Seconds before the command is killed (default: the server's, 10 min).
            check: Raise CommandExitError for a non-zero exit code (default).

        Returns:
            The :class:`~warren.models.CommandResult`, or a :class:`CommandHandle`.

        Raises:
            CommandExitError: The command exited non-zero (with check=True).
            TimeoutError: The command ran longer than timeout.
            ConflictError: The sandbox is not running.
        """
        keep_stdin = check_stdin(stdin, background)
        fifo = stdin_dir() if keep_stdin else None
        body = exec_body(cmd, env=env, cwd=cwd, user=user, stdin=None if keep_stdin else stdin,
                         timeout=timeout, stdin_dir=fifo)
        h = CommandHandle._start(self._sbx, body, on_stdout, on_stderr, fifo, check)
        if background:
            h._run_in_thread()
            return h
        h._pump()
        return h.wait()


class CommandHandle:
    """A command started with ``background=True``. Output callbacks run in a background
    thread that reads the command's stream.

    The process keeps running when the handle is dropped or disconnected; it ends when
    it exits, is killed, reaches its timeout or the sandbox stops.
    """

    def __init__(self) -> None:
        """Use ``sbx.commands.run(..., background=True)``."""
        self._sbx: "Sandbox"
        self._resp: httpx.Response
        self._events: Any
        self._st = CommandStream()
        self._done = threading.Event()
        self._error: Optional[BaseException] = None
        self._callbacks: Mapping[str, Optional[OutputCallback]] = {}
        self._fifo: Optional[str] = None
        self._check = True
        self._thread: Optional[threading.Thread] = None

    @classmethod
    def _start(cls, sbx: "Sandbox", body: Mapping[str, Any], on_stdout: Optional[OutputCallback],
               on_stderr: Optional[OutputCallback], fifo: Optional[str], check: bool) -> "CommandHandle":
        """Send the request and read up to the start event, so that errors before the
        command runs are raised here and pid is known."""
        h = cls()
        h._sbx, h._fifo, h._check = sbx, fifo, check
        h._callbacks = {"stdout": on_stdout, "stderr": on_stderr}
        h._resp = sbx._http.send(R.EXEC_COMMAND, {"id": sbx.id}, json=body,
                                 headers={"Accept": "text/event-stream"}, stream=True)
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
        """Record how the handle ended, once. A command that ran with stdin=True leaves a
        keeper process and a FIFO behind; they are removed before wait() returns."""
        if self._done.is_set():
            return
        if self._fifo and self._st.result is not None:
            self._cleanup_fifo()
        if self._done.is_set():  # disconnect() or a kill of the sandbox meanwhile
            return
        self._error = err
        self._done.set()

    def _cleanup_fifo(self) -> None:
        fifo, self._fifo = self._fifo, None
        try:
            self._sbx.commands.run(helper(STDIN_CLOSE, fifo or ""), user="root", check=False)
        except E.WarrenError:
            pass

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
            TimeoutError: timeout passed first, or the command reached its own timeout.
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
            raise E.WarrenError(f"stopped following command {self.pid} (disconnect) before it ended")
        if self._check and res.exit_code != 0:
            raise E.CommandExitError(res)
        return res

    def kill(self) -> bool:
        """Kill the command and its children (SIGKILL to its process group). Returns True
        if it was running, False if it had already ended."""
        if self._st.result is not None:
            return False
        fifo, self._fifo = self._fifo, None
        r = self._sbx.commands.run(helper(KILL_GROUP, str(self.pid), fifo or ""), user="root", check=False)
        return r.exit_code == 0

    def send_stdin(self, data: Union[str, bytes]) -> None:
        """Write data to the command's stdin. The command must have been started with
        ``stdin=True`` (and ``background=True``).

        Raises:
            WarrenError: stdin is not open.
        """
        if self._fifo is None:
            raise E.WarrenError("stdin is not open: start the command with background=True, stdin=True "
                                "(and do not call close_stdin first)")
        if not data:
            return
        r = self._sbx.commands.run(helper(STDIN_SEND, self._fifo), user="root", stdin=data, check=False)
        if r.exit_code != 0:
            raise E.WarrenError(f"sending stdin to command {self.pid} failed: {r.stderr.strip() or r.error}")

    def close_stdin(self) -> None:
        """Close the command's stdin: it reads end-of-file."""
        if self._fifo is None:
            return
        self._cleanup_fifo()

    def disconnect(self) -> None:
        """Stop receiving the command's output. The command keeps running."""
        if self._done.is_set():
            return
        self._done.set()
        from ._sync import shutdown_socket

        shutdown_socket(self._resp)

    def __repr__(self) -> str:
        state = "running" if not self.done else f"exit_code={self.exit_code}"
        return f"CommandHandle(pid={self.pid}, {state})"
