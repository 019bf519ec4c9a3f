"""Commands of an :class:`~warren.AsyncSandbox`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Literal, Mapping, Optional, Union, overload

import httpx

from . import _errors as E
from . import _routes as R
from ._http import SSEEvent
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
    from ._async import AsyncSandbox

__all__ = ["AsyncCommands", "AsyncCommandHandle"]

#: An output callback: a function or a coroutine function taking the text chunk.
OutputCallback = Callable[[str], Any]


class AsyncCommands:
    """Runs commands in a sandbox: ``sbx.commands``."""

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
        for background commands they run in an asyncio task."""
        keep_stdin = check_stdin(stdin, background)
        fifo = stdin_dir() if keep_stdin else None
        body = exec_body(cmd, env=env, cwd=cwd, user=user, stdin=None if keep_stdin else stdin,
                         timeout=timeout, stdin_dir=fifo)
        h = await AsyncCommandHandle._start(self._sbx, body, on_stdout, on_stderr, fifo, check)
        # The stream is read by a task even in the foreground, so that killing the sandbox
        # from another task can end it (the server keeps such a stream open).
        h._task = asyncio.get_running_loop().create_task(h._pump(), name=f"warren-cmd-{h.pid}")
        if background:
            return h
        try:
            return await h.wait()
        except asyncio.CancelledError:
            h._task.cancel()
            raise


class AsyncCommandHandle:
    """A command started with ``background=True``; its output is read by an asyncio
    task. The process keeps running when the handle is dropped or disconnected."""

    def __init__(self) -> None:
        """Use ``await sbx.commands.run(..., background=True)``."""
        self._sbx: "AsyncSandbox"
        self._resp: httpx.Response
        self._events: AsyncIterator[SSEEvent]
        self._st = CommandStream()
        self._done = asyncio.Event()
        self._error: Optional[BaseException] = None
        self._callbacks: Mapping[str, Optional[OutputCallback]] = {}
        self._fifo: Optional[str] = None
        self._check = True
        self._task: Optional["asyncio.Task[None]"] = None

    @classmethod
    async def _start(cls, sbx: "AsyncSandbox", body: Mapping[str, Any], on_stdout: Optional[OutputCallback],
                     on_stderr: Optional[OutputCallback], fifo: Optional[str], check: bool) -> "AsyncCommandHandle":
        h = cls()
        h._sbx, h._fifo, h._check = sbx, fifo, check
        h._callbacks = {"stdout": on_stdout, "stderr": on_stderr}
        h._resp = await sbx._http.send(R.EXEC_COMMAND, {"id": sbx.id}, json=body,
                                       headers={"Accept": "text/event-stream"}, stream=True)
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
                    await self._finish(None)
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
        await self._finish(err)

    async def _finish(self, err: Optional[BaseException]) -> None:
        """Record how the handle ended, once (removing the stdin FIFO and its keeper first)."""
        if self._done.is_set():
            return
        if self._fifo and self._st.result is not None:
            await self._cleanup_fifo()
        if self._done.is_set():
            return
        self._error = err
        self._done.set()

    async def _cleanup_fifo(self) -> None:
        fifo, self._fifo = self._fifo, None
        try:
            await self._sbx.commands.run(helper(STDIN_CLOSE, fifo or ""), user="root", check=False)
        except E.WarrenError:
            pass

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
            raise E.WarrenError(f"stopped following command {self.pid} (disconnect) before it ended")
        if self._check and res.exit_code != 0:
            raise E.CommandExitError(res)
        return res

    async def kill(self) -> bool:
        """Kill the command and its children. Returns True if it was running."""
        if self._st.result is not None:
            return False
        fifo, self._fifo = self._fifo, None
        r = await self._sbx.commands.run(helper(KILL_GROUP, str(self.pid), fifo or ""), user="root", check=False)
        return r.exit_code == 0

    async def send_stdin(self, data: Union[str, bytes]) -> None:
        """Write data to the command's stdin (started with stdin=True)."""
        if self._fifo is None:
            raise E.WarrenError("stdin is not open: start the command with background=True, stdin=True "
                                "(and do not call close_stdin first)")
        if not data:
            return
        r = await self._sbx.commands.run(helper(STDIN_SEND, self._fifo), user="root", stdin=data, check=False)
        if r.exit_code != 0:
            raise E.WarrenError(f"sending stdin to command {self.pid} failed: {r.stderr.strip() or r.error}")

    async def close_stdin(self) -> None:
        """Close the command's stdin: it reads end-of-file."""
        if self._fifo is not None:
            await self._cleanup_fifo()

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
