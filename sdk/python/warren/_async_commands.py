"""Commands of an :class:`~warren.AsyncSandbox`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, List, Literal, Mapping, Optional, Union, overload

import httpx

from . import _errors as E
from . import _routes as R
from ._http import SSEEvent
from ._shared import Cmd, CommandStream, Stdin, exec_body, killed_error, outcome, pid_of, stdin_body
from .models import PROCESS_LIST, PROCESS_STARTED, CommandResult, ProcessInfo

if TYPE_CHECKING:  # pragma: no cover
    from ._async import AsyncSandbox

__all__ = ["AsyncCommands", "AsyncCommandHandle"]

#: An output callback: a function or a coroutine function taking the text chunk.
OutputCallback = Callable[[str], Any]


class AsyncCommands:
    """Runs commands in a sandbox and manages its processes: ``sbx.commands``; see
    :class:`warren._sync_commands.Commands`."""

    def __init__(self, sandbox: "AsyncSandbox") -> None:
        self._sbx = sandbox

    @overload
    async def run(self, cmd: Cmd, *, background: Literal[False] = ..., on_stdout: Optional[OutputCallback] = ...,
                  on_stderr: Optional[OutputCallback] = ..., stdin: Stdin = ...,
                  env: Optional[Mapping[str, str]] = ..., cwd: Optional[str] = ..., user: Optional[str] = ...,
                  timeout: Optional[float] = ..., check: bool = ...) -> CommandResult: ...

    @overload
    async def run(self, cmd: Cmd, *, background: Literal[True], on_stdout: Optional[OutputCallback] = ...,
                  on_stderr: Optional[OutputCallback] = ..., stdin: Stdin = ...,
                  env: Optional[Mapping[str, str]] = ..., cwd: Optional[str] = ..., user: Optional[str] = ...,
                  timeout: Optional[float] = ..., check: bool = ...) -> "AsyncCommandHandle": ...

    async def run(
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
    ) -> Union[CommandResult, "AsyncCommandHandle"]:
        """Run a command and wait for it, or start it in the background; see
        :meth:`warren._sync_commands.Commands.run`. Callbacks may be coroutine functions;
        they run in an asyncio task."""
        body = exec_body(cmd, env=env, cwd=cwd, user=user, stdin=stdin, timeout=timeout, background=background)
        if background:
            data = await self._sbx._http.json(R.START_PROCESS, {"id": self._sbx.id}, json=body)
            pid = PROCESS_STARTED.read(data)["pid"]
            try:
                return await self.connect(pid, on_stdout=on_stdout, on_stderr=on_stderr, check=check)
            except E.WarrenError as err:
                err.add_note(f"the command runs as process {pid}: attach with commands.connect({pid}) "
                             f"or stop it with commands.kill({pid})")
                raise
        h = await AsyncCommandHandle._open(self._sbx, R.EXEC_COMMAND, {"id": self._sbx.id}, body, on_stdout,
                                           on_stderr, check)
        # The stream is read by a task even in the foreground, so that killing the sandbox
        # from another task can end it at once.
        h._task = asyncio.get_running_loop().create_task(h._pump(), name=f"warren-cmd-{h.pid}")
        try:
            return await h.wait()
        except asyncio.CancelledError:
            h._task.cancel()
            raise

    async def connect(self, pid: int, *, on_stdout: Optional[OutputCallback] = None,
                      on_stderr: Optional[OutputCallback] = None, check: bool = True) -> "AsyncCommandHandle":
        """Attach to a running process and follow its output (a background command started
        through the API is replayed from its start); see
        :meth:`warren._sync_commands.Commands.connect`."""
        path = {"id": self._sbx.id, "pid": pid_of(pid)}
        h = await AsyncCommandHandle._open(self._sbx, R.PROCESS_EVENTS, path, None, on_stdout, on_stderr, check)
        h._task = asyncio.get_running_loop().create_task(h._pump(), name=f"warren-cmd-{h.pid}")
        return h

    async def list(self) -> List[ProcessInfo]:
        """The processes running in the sandbox that were started through the API or by
        its template."""
        data = await self._sbx._http.json(R.LIST_PROCESSES, {"id": self._sbx.id})
        processes: List[ProcessInfo] = PROCESS_LIST.read(data)["processes"]
        return processes

    async def kill(self, pid: int) -> bool:
        """Kill a process and its process group (SIGKILL). Returns True if it was running."""
        try:
            await self._sbx._http.send(R.SIGNAL_PROCESS, {"id": self._sbx.id, "pid": pid_of(pid)},
                                       json=R.SIGNAL_PROCESS.body(signal="KILL"))
        except E.NotFoundError:
            return False
        return True

    async def send_stdin(self, pid: int, data: Union[str, bytes]) -> None:
        """Write text or bytes to a process's stdin (ConflictError if it is not open)."""
        body = stdin_body(data)
        if body is not None:
            await self._sbx._http.send(R.SEND_STDIN, {"id": self._sbx.id, "pid": pid_of(pid)}, json=body)

    async def close_stdin(self, pid: int) -> None:
        """Close a process's stdin: it reads end-of-file."""
        await self._sbx._http.send(R.CLOSE_STDIN, {"id": self._sbx.id, "pid": pid_of(pid)})


class AsyncCommandHandle:
    """A command followed through its output stream (``background=True`` or
    ``commands.connect(pid)``); its output is read by an asyncio task. The process keeps
    running when the handle is dropped or disconnected."""

    def __init__(self) -> None:
        """Use ``await sbx.commands.run(..., background=True)`` or ``await sbx.commands.connect(pid)``."""
        self._sbx: "AsyncSandbox"
        self._resp: httpx.Response
        self._events: AsyncIterator[SSEEvent]
        self._st = CommandStream()
        self._done = asyncio.Event()
        self._error: Optional[BaseException] = None
        self._callbacks: Mapping[str, Optional[OutputCallback]] = {}
        self._check = True
        self._task: Optional["asyncio.Task[None]"] = None

    @classmethod
    async def _open(cls, sbx: "AsyncSandbox", route: R.Route, path: Mapping[str, str],
                    body: Optional[Mapping[str, Any]], on_stdout: Optional[OutputCallback],
                    on_stderr: Optional[OutputCallback], check: bool) -> "AsyncCommandHandle":
        """Open the command's event stream and read up to its start event."""
        h = cls()
        h._sbx, h._check = sbx, check
        h._callbacks = {"stdout": on_stdout, "stderr": on_stderr}
        h._resp = await sbx._http.send(route, path, json=body, headers={"Accept": "text/event-stream"}, stream=True)
        h._events = sbx._http.events(h._resp, f"command in sandbox {sbx.id}").__aiter__()
        try:
            while True:
                try:
                    ev = await h._events.__anext__()
                except StopAsyncIteration:
                    raise CommandStream.unfinished() from None
                out = h._st.apply(ev)
                if out is not None and out[0] == "start":
                    break
        except BaseException:
            await h._resp.aclose()
            raise
        sbx._handles.add(h)
        return h

    async def _pump(self) -> None:
        """Read the rest of the stream, calling the callbacks; record how it ended (the
        stream is read to its close after the end event, to reuse the connection)."""
        from ._async import call

        err: Optional[BaseException] = None
        ended = False
        try:
            async for ev in self._events:
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
                await call(self._callbacks.get(kind), payload)
            if not ended:
                err = CommandStream.unfinished()
        except asyncio.CancelledError:
            if not self._done.is_set():
                raise  # the caller was cancelled, not disconnect() or kill of the sandbox
            err = None
        except Exception as e:  # recorded for wait()
            err = e
        finally:
            try:
                await self._resp.aclose()
            except Exception:
                pass
        self._finish(err)

    def _finish(self, err: Optional[BaseException]) -> None:
        """Record how the handle ended, once."""
        if self._done.is_set():
            return
        self._error = killed_error(err, self._sbx)
        self._done.set()

    def _abort(self, err: BaseException) -> None:
        if self._done.is_set():
            return
        self._error = err
        self._done.set()
        if self._task is not None:
            self._task.cancel()

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

    async def wait(self, timeout: Optional[float] = None) -> CommandResult:
        """Wait for the command to end; see :meth:`warren._sync_commands.CommandHandle.wait`."""
        if self._task is None and not self._done.is_set():
            await self._pump()
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except asyncio.TimeoutError:
            raise E.TimeoutError(f"command {self.pid} still running after {timeout}s") from None
        if self._error is not None:
            raise self._error
        res = self._st.result
        if res is None:
            raise E.WarrenError(f"stopped following command {self.pid} (disconnect) before it ended; "
                                "attach again with commands.connect(pid)")
        return outcome(res, self._check)

    async def kill(self) -> bool:
        """Kill the command and its children. Returns True if it was running."""
        if self._st.result is not None:
            return False
        return await self._sbx.commands.kill(self.pid)

    async def send_stdin(self, data: Union[str, bytes]) -> None:
        """Write text or bytes to the command's stdin (started with stdin=True)."""
        await self._sbx.commands.send_stdin(self.pid, data)

    async def close_stdin(self) -> None:
        """Close the command's stdin: it reads end-of-file."""
        await self._sbx.commands.close_stdin(self.pid)

    async def disconnect(self) -> None:
        """Stop receiving the command's output. The command keeps running."""
        if self._done.is_set():
            return
        self._done.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def __repr__(self) -> str:
        state = "running" if not self.done else f"exit_code={self.exit_code}"
        return f"AsyncCommandHandle(pid={self.pid}, {state})"
