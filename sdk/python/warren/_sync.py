"""The synchronous client: :class:`Sandbox` and its HTTP transport."""

from __future__ import annotations

import logging
import socket
import threading
import time
import weakref
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Type, Union

import httpx

from . import _errors as E
from . import _routes as R
from ._config import Config, resolve_config
from ._http import USER_AGENT, Body, SSEDecoder, SSEEvent, error_from_response, httpx_timeout, nodelay, retry_delay, transport_error
from ._shared import (CodeStream, LimitsArg, NetworkArg, context_id, create_body, fork_body, host, list_params,
                      run_code_body, sandbox_domain, seconds, set_network_body, snapshot_params)
from .models import (CONTEXT_LIST, FORK_LIST, PORT_LIST, TEMPLATE_LIST, CodeContext, Execution, ExecutionError,
                     OutputMessage, PortInfo, Result, SandboxInfo, SandboxPage, SnapshotInfo, SnapshotPage, Template)

log = logging.getLogger("warren")

__all__ = ["Sandbox"]

class SyncHTTP:
    """One connection pool to one server, with the SDK's retry policy. Safe to share
    between threads."""

    def __init__(self, cfg: Config, client: Optional[httpx.Client] = None) -> None:
        self.cfg = cfg
        headers = {"Authorization": f"Bearer {cfg.api_key}", "User-Agent": USER_AGENT, **cfg.headers}
        self._own = client is None
        self.client = client or httpx.Client(base_url=cfg.api_url, headers=headers, timeout=httpx_timeout(cfg))
        if not self._own:
            self.client.headers.update(headers)

    def close(self) -> None:
        """Close the connection pool (if this object created it)."""
        if self._own:
            self.client.close()

    def send(
        self, route: R.Route, path: Optional[Mapping[str, str]] = None, *, json: Any = None,
        params: Optional[Mapping[str, Any]] = None, body: Body = None, replayable: bool = True,
        headers: Optional[Mapping[str, str]] = None, stream: bool = False,
    ) -> httpx.Response:
        """Send a request, retrying 429 (rate limited) and 503 as the config says, and
        raise the matching APIError for an error answer. With stream=True the answer's
        body is left unread: the caller must close it. body is bytes or a zero-argument
        callable returning a fresh body; replayable=False disables retries (a body
        iterator cannot be sent twice)."""
        url = route.url(**(path or {}))
        if self.client.is_closed:
            raise E.WarrenError("this client was closed (close() or the end of a with block); "
                                "attach again with connect(sandbox_id)")
        attempt = 0
        while True:
            content = body() if callable(body) else body
            req = self.client.build_request(route.method, url, json=json, params=params, content=content,
                                            headers=headers)
            try:
                resp = self.client.send(req, stream=True)
            except httpx.HTTPError as err:
                raise transport_error(err, f"{route.method} {url}") from err
            nodelay(resp)
            if resp.status_code < 400:
                if not stream:
                    try:
                        resp.read()
                    except httpx.HTTPError as err:
                        raise transport_error(err, f"{route.method} {url}") from err
                    finally:
                        resp.close()
                return resp
            try:
                raw = resp.read()
            except httpx.HTTPError:
                raw = b""
            finally:
                resp.close()
            api_err = error_from_response(resp.status_code, resp.headers, raw)
            delay = retry_delay(api_err, attempt, self.cfg) if replayable else None
            if delay is None:
                raise api_err
            log.info("warren: %s %s answered %d (%s); retry %d of %d in %.2fs",
                     route.method, url, resp.status_code, api_err.code, attempt + 1, self.cfg.max_retries, delay)
            time.sleep(delay)
            attempt += 1

    def json(self, route: R.Route, path: Optional[Mapping[str, str]] = None, **kw: Any) -> Any:
        """send() and decode the JSON answer."""
        return self.send(route, path, **kw).json()

    def events(self, resp: httpx.Response, what: str) -> Iterator[SSEEvent]:
        """The Server-Sent Events of a streamed answer, as they arrive."""
        dec = SSEDecoder()
        try:
            for chunk in resp.iter_raw():
                yield from dec.feed(chunk)
        except httpx.HTTPError as err:
            raise transport_error(err, what) from err
        yield from dec.flush()


def shutdown_socket(resp: httpx.Response) -> None:
    """Wake a thread blocked reading resp by shutting its socket down (best effort), then
    close it."""
    stream = resp.extensions.get("network_stream")
    sock = None
    if stream is not None:
        try:
            sock = stream.get_extra_info("socket")
        except Exception:  # pragma: no cover - depends on the httpcore backend
            sock = None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        resp.close()
    except Exception:
        pass


class Sandbox:
    """A running sandbox. Create one with :meth:`create`, or attach to an existing one
    with :meth:`connect`. Used as a context manager, the sandbox is killed on exit::

        with Sandbox.create(template="code-interpreter") as sbx:
            print(sbx.commands.run("echo hi").stdout)

    Attributes:
        commands: Run commands (:class:`~warren._sync_commands.Commands`).
        files: Read and write files (:class:`~warren._sync_files.Files`).
    """

    def __init__(self, info: SandboxInfo, http: SyncHTTP) -> None:
        """Use :meth:`create` or :meth:`connect` instead."""
        from ._sync_commands import Commands
        from ._sync_files import Files

        self._info = info
        self._http = http
        self._handles: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._killing = False  # kill() was called (and did not fail)
        self._handles_lock = threading.Lock()  # commands may run in several threads
        self.commands = Commands(self)
        self.files = Files(self)

    # --- construction -------------------------------------------------------------

    @staticmethod
    def _http_for(config: Optional[Config], api_url: Optional[str], api_key: Optional[str], domain: Optional[str],
                  request_timeout: Optional[float], max_retries: Optional[int]) -> SyncHTTP:
        if config is None:
            config = resolve_config(api_url, api_key, domain=domain, request_timeout=request_timeout,
                                    max_retries=max_retries)
        return SyncHTTP(config)

    @classmethod
    def create(
        cls,
        template: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        metadata: Optional[Mapping[str, str]] = None,
        limits: LimitsArg = None,
        internet: Optional[bool] = None,
        runtime: Optional[str] = None,
        min_isolation: Optional[str] = None,
        snapshot: Optional[str] = None,
        on_timeout: Optional[str] = None,
        auto_resume: Optional[bool] = None,
        network: NetworkArg = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        domain: Optional[str] = None,
        request_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        config: Optional[Config] = None,
    ) -> "Sandbox":
        """Start a sandbox and return it once it runs.

        Args:
            template: Template id ("base", "code-interpreter", ...); default: the server's ("base").
            timeout: Seconds until the sandbox is stopped; default: the server's.
            env: Environment variables for every command in the sandbox.
            metadata: Labels to filter :meth:`list` by.
            limits: A :class:`~warren.models.Limits` or a dict with cpu_cores, memory_mb,
                disk_mb, max_processes (0 = the server's default).
            internet: Allow outbound internet access (default: yes).
            runtime: Runtime driver ("gvisor", "runc"); default: the server's.
            min_isolation: Minimum isolation: "container", "sandbox" or "microvm".
            snapshot: Start from this snapshot (its id or name; see :meth:`create_snapshot`)
                instead of a template: with its memory, files and running processes.
                Not together with template.
            on_timeout: What happens at the timeout: "kill" (default) or "pause" (the
                sandbox is paused, and :meth:`resume` or :meth:`connect` brings it back).
            auto_resume: Resume the paused sandbox when a request comes for it through
                the proxy.
            network: Its egress policy: a :class:`~warren.models.NetworkPolicy` or a
                dict with allow_out and deny_out lists (see :meth:`set_network`).
            api_url, api_key: Override WARREN_API_URL, WARREN_API_KEY.
            domain: Override the sandbox domain the server reports (or WARREN_DOMAIN),
                for :meth:`get_host`.
            request_timeout: Seconds an HTTP request may wait (default 60).
            max_retries: Retries on 429 (rate limited) and 503 (default 3).
            config: A complete :class:`~warren.Config` instead of the five above.

        Raises:
            QuotaExceededError: A quota of the team is used up.
            NotFoundError: The template does not exist.
            AuthenticationError, RateLimitedError, InvalidArgumentError, ...
        """
        http = cls._http_for(config, api_url, api_key, domain, request_timeout, max_retries)
        try:
            body = create_body(template, timeout, env, metadata, limits, internet, runtime, min_isolation,
                               snapshot, on_timeout, auto_resume, network)
            data = http.json(R.CREATE_SANDBOX, json=body)
        except BaseException:
            http.close()
            raise
        return cls(SandboxInfo.from_json(data), http)

    @classmethod
    def connect(
        cls,
        sandbox_id: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        domain: Optional[str] = None,
        request_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        config: Optional[Config] = None,
    ) -> "Sandbox":
        """Attach to an existing sandbox of the team. A paused sandbox stays paused:
        call :meth:`resume` to start it again.

        Raises:
            NotFoundError: No sandbox of the team has this id.
        """
        http = cls._http_for(config, api_url, api_key, domain, request_timeout, max_retries)
        try:
            data = http.json(R.GET_SANDBOX, {"id": sandbox_id})
        except BaseException:
            http.close()
            raise
        return cls(SandboxInfo.from_json(data), http)

    @classmethod
    def list(
        cls,
        *,
        state: Union[str, Sequence[str], None] = None,
        metadata: Optional[Mapping[str, str]] = None,
        limit: Optional[int] = None,
        page_size: int = 100,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        config: Optional[Config] = None,
    ) -> List[SandboxInfo]:
        """The team's sandboxes, newest first, following pages until the end or limit.

        Args:
            state: Only these states ("starting", "running", "paused", "stopped", "error").
            metadata: Only sandboxes whose metadata has all these key/value pairs.
            limit: Return at most this many.
            page_size: Sandboxes per request (1 to 1000).
        """
        http = cls._http_for(config, api_url, api_key, None, request_timeout, max_retries)
        out: List[SandboxInfo] = []
        cursor: Optional[str] = None
        try:
            while limit is None or len(out) < limit:
                size = page_size if limit is None else min(page_size, limit - len(out))
                page = SandboxPage.from_json(http.json(R.LIST_SANDBOXES, params=list_params(state, metadata, size, cursor)))
                out.extend(page.sandboxes)
                if not page.next_cursor or not page.sandboxes:
                    break
                cursor = page.next_cursor
        finally:
            http.close()
        return out if limit is None else out[:limit]

    @classmethod
    def templates(
        cls, *, api_url: Optional[str] = None, api_key: Optional[str] = None, config: Optional[Config] = None,
    ) -> List[Template]:
        """The server's templates and whether each is ready."""
        http = cls._http_for(config, api_url, api_key, None, None, None)
        try:
            templates: List[Template] = TEMPLATE_LIST.read(http.json(R.LIST_TEMPLATES))["templates"]
            return templates
        finally:
            http.close()

    @classmethod
    def list_snapshots(
        cls,
        *,
        sandbox_id: Optional[str] = None,
        limit: Optional[int] = None,
        page_size: int = 100,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        config: Optional[Config] = None,
    ) -> List[SnapshotInfo]:
        """The team's snapshots, newest first, following pages until the end or limit.

        Args:
            sandbox_id: Only the snapshots taken of this sandbox.
            limit: Return at most this many.
            page_size: Snapshots per request.
        """
        http = cls._http_for(config, api_url, api_key, None, None, None)
        out: List[SnapshotInfo] = []
        cursor: Optional[str] = None
        try:
            while limit is None or len(out) < limit:
                size = page_size if limit is None else min(page_size, limit - len(out))
                page = SnapshotPage.from_json(http.json(R.LIST_SNAPSHOTS, params=snapshot_params(sandbox_id, size, cursor)))
                out.extend(page.snapshots)
                if not page.next_cursor or not page.snapshots:
                    break
                cursor = page.next_cursor
        finally:
            http.close()
        return out if limit is None else out[:limit]

    @classmethod
    def get_snapshot(
        cls, snapshot: str, *, api_url: Optional[str] = None, api_key: Optional[str] = None,
        config: Optional[Config] = None,
    ) -> SnapshotInfo:
        """One of the team's snapshots, by id or name.

        Raises:
            NotFoundError: The team has no such snapshot.
        """
        http = cls._http_for(config, api_url, api_key, None, None, None)
        try:
            return SnapshotInfo.from_json(http.json(R.GET_SNAPSHOT, {"id": snapshot}))
        finally:
            http.close()

    @classmethod
    def delete_snapshot(
        cls, snapshot: str, *, api_url: Optional[str] = None, api_key: Optional[str] = None,
        config: Optional[Config] = None,
    ) -> bool:
        """Delete one of the team's snapshots (by id or name) and its files; sandboxes
        started from it are not affected. Returns False if there was no such snapshot."""
        http = cls._http_for(config, api_url, api_key, None, None, None)
        try:
            http.send(R.DELETE_SNAPSHOT, {"id": snapshot})
            return True
        except E.NotFoundError:
            return False
        finally:
            http.close()

    # --- the sandbox ----------------------------------------------------------------

    @property
    def sandbox_id(self) -> str:
        """The sandbox's id."""
        return self._info.sandbox_id

    @property
    def id(self) -> str:
        """The sandbox's id (same as sandbox_id)."""
        return self._info.sandbox_id

    @property
    def info(self) -> SandboxInfo:
        """What the API last said about the sandbox (see :meth:`get_info` to refresh)."""
        return self._info

    @property
    def config(self) -> Config:
        """The client configuration in use."""
        return self._http.cfg

    def get_info(self) -> SandboxInfo:
        """Fetch the sandbox's current description."""
        self._info = SandboxInfo.from_json(self._http.json(R.GET_SANDBOX, {"id": self.id}))
        return self._info

    def is_running(self) -> bool:
        """Whether the sandbox is still running (asks the server); a paused one is not."""
        try:
            return self.get_info().is_running
        except E.NotFoundError:
            return False

    def set_timeout(self, timeout: float) -> SandboxInfo:
        """Stop the sandbox ``timeout`` seconds from now (instead of its current end).

        Raises:
            ConflictError: The sandbox is no longer running.
        """
        secs = seconds(timeout, "timeout")
        self._info = SandboxInfo.from_json(
            self._http.json(R.SET_TIMEOUT, {"id": self.id}, json=R.SET_TIMEOUT.body(timeout=secs)))
        return self._info

    def set_network(self, allow_out: Optional[Sequence[str]] = None,
                    deny_out: Optional[Sequence[str]] = None) -> SandboxInfo:
        """Replace the sandbox's egress policy (no arguments clear it). A running
        sandbox's new connections meet it at once; a paused one gets it when resumed.

        Args:
            allow_out: IPv4 addresses, CIDR prefixes, domain names or ``*.wildcards``
                always allowed.
            deny_out: The same kinds of entries, denied unless ``allow_out`` names
                them; ``["0.0.0.0/0"]`` with an ``allow_out`` list means "only these".

        Raises:
            InvalidArgumentError: An entry is not an IPv4 address, prefix or name.
            ConflictError: The sandbox is stopped.
        """
        body = set_network_body(allow_out, deny_out)
        self._info = SandboxInfo.from_json(self._http.json(R.SET_NETWORK, {"id": self.id}, json=body))
        return self._info

    def pause(self) -> SandboxInfo:
        """Save the sandbox's memory, files and processes and stop it. A paused sandbox
        uses no CPU or memory and does not count toward the team's sandbox quota; it
        keeps its id, and :meth:`resume` starts it again where it was.

        Raises:
            ConflictError: The sandbox is not running (already paused, or stopped), or
                its runtime cannot checkpoint (runc; use gvisor).
        """
        self._info = SandboxInfo.from_json(self._http.json(R.PAUSE_SANDBOX, {"id": self.id}))
        return self._info

    def resume(self, timeout: Optional[float] = None) -> SandboxInfo:
        """Start a paused sandbox again with the memory, files and processes it had: a
        process that was serving goes on serving at the same URL.

        Args:
            timeout: Seconds until the resumed sandbox is stopped; default: the server's.

        Raises:
            ConflictError: The sandbox is not paused.
        """
        body = R.RESUME_SANDBOX.body(timeout=seconds(timeout, "timeout"))
        self._info = SandboxInfo.from_json(self._http.json(R.RESUME_SANDBOX, {"id": self.id}, json=body))
        return self._info

    def fork(self, count: int = 1, *, timeout: Optional[float] = None) -> List["Sandbox"]:
        """Start ``count`` (1 to 20) new sandboxes, each a copy of this running sandbox's
        memory and files taken at one instant, with its own id, address, hostname and
        timeout. What a copy writes is seen neither by this sandbox nor by the other
        copies; this sandbox keeps running. Each copy is a :class:`Sandbox` with its own
        connections: close (or kill) it when done.

        Args:
            count: How many copies.
            timeout: Seconds each copy lives; default: the server's.

        Raises:
            ConflictError: The sandbox is not running.
            ForkError: Some copies started and others did not; the ones that did are
                in its ``sandboxes``. When none starts, the error of the first is raised.
        """
        data = self._http.json(R.FORK_SANDBOX, {"id": self.id}, json=fork_body(count, timeout))
        got = FORK_LIST.read(data)
        forks = [Sandbox(info, SyncHTTP(self._http.cfg)) for info in got["sandboxes"]]
        if got["errors"]:
            raise E.ForkError(forks, got["errors"])
        return forks

    def create_snapshot(self, name: Optional[str] = None) -> SnapshotInfo:
        """Save this running sandbox, memory and files, as a snapshot the team keeps
        (counted against its max_snapshots quota); ``Sandbox.create(snapshot=...)``
        starts sandboxes from it. The sandbox keeps running.

        Args:
            name: A name unique in the team, which creates may give instead of the id.

        Raises:
            ConflictError: The sandbox is not running, or the name is taken.
            QuotaExceededError: The team keeps as many snapshots as it may.
        """
        data = self._http.json(R.CREATE_SNAPSHOT, {"id": self.id}, json=R.CREATE_SNAPSHOT.body(name=name))
        return SnapshotInfo.from_json(data)

    def kill(self) -> bool:
        """Stop the sandbox now. Returns True if it was running, False if it was already
        gone. Commands this client follows end with SandboxKilledError."""
        # While the kill is under way, the server ends this client's command streams with
        # a conflict; the handles report that as SandboxKilledError (see killed_error).
        self._killing = True
        try:
            self._http.send(R.KILL_SANDBOX, {"id": self.id})
            killed = True
        except E.NotFoundError:
            killed = False
        except BaseException:
            self._killing = False
            raise
        for h in self._live_handles():
            h._abort(E.SandboxKilledError(f"sandbox {self.id} was killed"))
        return killed

    def get_host(self, port: int) -> str:
        """The host name that reaches ``port`` in this sandbox through Warren's proxy:
        ``<port>-<sandbox id>.<domain>``. The domain is the one the server reports with
        the sandbox, unless ``domain=`` or WARREN_DOMAIN overrides it.

        Raises:
            ConfigError: The server reports no domain and none is configured.
        """
        return host(port, self.id, sandbox_domain(self._http.cfg.domain, self._info))

    def list_ports(self) -> List[PortInfo]:
        """The TCP ports listening in the sandbox, with their URLs through the proxy.

        Raises:
            ConflictError: The sandbox is not running.
        """
        ports: List[PortInfo] = PORT_LIST.read(self._http.json(R.LIST_PORTS, {"id": self.id}))["ports"]
        return ports

    # --- code interpreter -----------------------------------------------------------

    def run_code(
        self,
        code: str,
        *,
        language: Optional[str] = None,
        context: Union[CodeContext, str, None] = None,
        on_stdout: Optional[Callable[[OutputMessage], Any]] = None,
        on_stderr: Optional[Callable[[OutputMessage], Any]] = None,
        on_result: Optional[Callable[[Result], Any]] = None,
        on_error: Optional[Callable[[ExecutionError], Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Execution:
        """Run a cell in the sandbox's code interpreter (templates with one, such as
        "code-interpreter") and return its :class:`~warren.models.Execution`. State
        persists between cells of a context. An exception the cell raises is in
        ``Execution.error``; it is not raised.

        Args:
            code: The source.
            language: "python" (default), "javascript", "bash", ...: that language's
                default context. Not together with context.
            context: A context from :meth:`create_code_context` (or its id).
            on_stdout, on_stderr: Called with each chunk printed, as it is printed.
            on_result: Called with each result (plots as they are shown, the value last).
            on_error: Called with the cell's exception.
            env: Extra environment variables for this cell.
            timeout: Seconds before the cell is interrupted (it then fails with
                KeyboardInterrupt).

        Raises:
            ConflictError: The sandbox has no code interpreter.
        """
        body = run_code_body(code, language, context, env, timeout)
        what = f"run_code in sandbox {self.id}"
        resp = self._http.send(R.RUN_CODE, {"id": self.id}, json=body,
                               headers={"Accept": "text/event-stream"}, stream=True)
        st = CodeStream()
        callbacks = {"stdout": on_stdout, "stderr": on_stderr, "result": on_result, "error": on_error}
        try:
            for ev in self._http.events(resp, what):
                if st.done:
                    continue  # read to the close so that the connection is reused
                out = st.apply(ev)
                if out is not None:
                    cb = callbacks.get(out[0])
                    if cb is not None:
                        cb(out[1])
        finally:
            resp.close()
        if not st.done:
            raise E.ConnectionError(f"{what}: the stream ended before the execution did")
        return st.execution

    def create_code_context(self, language: Optional[str] = None, cwd: Optional[str] = None) -> CodeContext:
        """Create a code interpreter context with its own state.

        Args:
            language: "python" (default), "javascript", "bash", ...
            cwd: Its working directory (default: the user's home).
        """
        data = self._http.json(R.CREATE_CONTEXT, {"id": self.id},
                               json=R.CREATE_CONTEXT.body(language=language, cwd=cwd))
        return CodeContext.from_json(data)

    def list_code_contexts(self) -> List[CodeContext]:
        """The sandbox's code interpreter contexts."""
        contexts: List[CodeContext] = CONTEXT_LIST.read(self._http.json(R.LIST_CONTEXTS, {"id": self.id}))["contexts"]
        return contexts

    def restart_code_context(self, context: Union[CodeContext, str]) -> None:
        """Restart a context's interpreter: its state is lost."""
        self._http.send(R.RESTART_CONTEXT, {"id": self.id, "context_id": context_id(context)})

    def remove_code_context(self, context: Union[CodeContext, str]) -> None:
        """Delete a context."""
        self._http.send(R.DELETE_CONTEXT, {"id": self.id, "context_id": context_id(context)})

    # --- lifetime of the client -----------------------------------------------------

    def close(self) -> None:
        """Release the HTTP connections. The sandbox keeps running (see :meth:`kill`)."""
        for h in self._live_handles():
            h.disconnect()
        self._http.close()

    def _track(self, handle: Any) -> None:
        with self._handles_lock:
            self._handles.add(handle)

    def _live_handles(self) -> List[Any]:
        with self._handles_lock:
            return list(self._handles)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        try:
            self.kill()
        except E.WarrenError:
            if exc_type is None:
                raise
            log.warning("warren: killing sandbox %s on exit failed", self.id, exc_info=True)
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"Sandbox(id={self.id!r}, template={self._info.template!r}, state={self._info.state!r})"
