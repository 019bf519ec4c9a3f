"""Template builds with the synchronous client: :class:`Templates`."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, List, Mapping, Optional, Sequence, Type, Union

from . import _errors as E
from . import _routes as R
from ._config import Config, resolve_config
from ._sync import SyncHTTP
from ._templates import (BUILD_LIST, DEFAULT_MAX_CONTEXT, Build, BuildLogLine, BuildLogs, BuildStarted, Follower, PathArg,
                         ReadyCheck, prepare_build)
from .models import TEMPLATE_LIST, Template

__all__ = ["Templates"]

OnLog = Callable[[BuildLogLine], Any]


class Templates:
    """The team's templates: build them (from steps, or a Dockerfile and a build
    context directory), follow their builds' logs, list and delete them::

        from warren import Templates

        with Templates() as tpl:
            build = tpl.build("my-app", context="./app", on_log=lambda l: print(l.message))
            print(build.state, build.cached_steps)   # ready [0, 1]

    Configuration is as for :class:`~warren.Sandbox` (arguments, else WARREN_API_URL
    and WARREN_API_KEY). Close it (or use ``with``) to release its connections.
    """

    def __init__(self, api_url: Optional[str] = None, api_key: Optional[str] = None, *,
                 request_timeout: Optional[float] = None, max_retries: Optional[int] = None,
                 config: Optional[Config] = None) -> None:
        if config is None:
            config = resolve_config(api_url, api_key, request_timeout=request_timeout, max_retries=max_retries)
        self._http = SyncHTTP(config)

    def build(
        self,
        name: str,
        *,
        context: Optional[PathArg] = None,
        dockerfile: Optional[PathArg] = None,
        dockerfile_text: Optional[str] = None,
        from_template: Optional[str] = None,
        from_image: Optional[str] = None,
        steps: Optional[Sequence[Any]] = None,
        start_cmd: Optional[str] = None,
        ready: Optional[Union[ReadyCheck, Mapping[str, Any]]] = None,
        env: Optional[Mapping[str, str]] = None,
        workdir: Optional[str] = None,
        user: Optional[str] = None,
        build_args: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        max_context_bytes: int = DEFAULT_MAX_CONTEXT,
        on_log: Optional[OnLog] = None,
        wait: bool = True,
    ) -> Build:
        """Build the team's template name, and (with wait) follow its log until it ends.

        Give a parent (from_template or from_image) and steps (:class:`~warren.BuildStep`
        or dicts), or a Dockerfile: dockerfile (a path), dockerfile_text, or, with a
        context and no steps, <context>/Dockerfile. context is a directory sent as a tar
        archive, less what its .dockerignore leaves out; COPY reads from it.

        Args:
            start_cmd, ready: The command the template's sandboxes start with, and when
                it is ready (:class:`~warren.ReadyCheck` or a dict).
            env, workdir, user: Defaults of the template's sandboxes (steps may set them).
            build_args: A Dockerfile's ARG values.
            timeout: Seconds the build may take (None: the server's limit).
            max_context_bytes: The most file content the context may hold.
            on_log: Called with each :class:`~warren.BuildLogLine` as it comes.
            wait: Follow the build until it ends (else return it as started).

        Returns:
            The :class:`~warren.Build`: ready (with wait), or as started.

        Raises:
            BuildError: The build failed (the step, its exit code and last log lines).
            InvalidArgumentError: The server refused the request (a Dockerfile
                instruction it does not take, a context over its limit, ...).
            ValueError: The arguments are inconsistent, or the context cannot be read.
        """
        req = prepare_build(name, context=context, dockerfile=dockerfile, dockerfile_text=dockerfile_text, max_context_bytes=max_context_bytes,
            from_template=from_template, from_image=from_image, steps=steps, start_cmd=start_cmd, ready=ready, env=env,
            workdir=workdir, user=user, timeout=timeout, build_args=build_args,
        )
        try:
            if req.multipart is not None:
                mp = req.multipart
                raw = self._http.json(R.BUILD_TEMPLATE, body=lambda: mp.chunks(),
                                      headers={"Content-Type": mp.content_type})
            else:
                raw = self._http.json(R.BUILD_TEMPLATE, json=req.json)
        finally:
            req.close()
        started = BuildStarted.from_json(raw)
        if not wait:
            return started.build
        return self.follow(started.build.template_id, started.build.build_id, on_log=on_log)

    def follow(self, template_id: str, build_id: str, *, offset: int = 0, on_log: Optional[OnLog] = None,
               check: bool = True) -> Build:
        """Follow a build's log from line offset (SSE) until the build ends, calling
        on_log for each line, and return the ended build; with check, a failed build
        raises :class:`~warren.BuildError`."""
        path = {"id": template_id, "build": build_id}
        resp = self._http.send(R.FOLLOW_BUILD, path, params=R.FOLLOW_BUILD.params(offset=offset),
                               headers={"Accept": "text/event-stream"}, stream=True)
        f = Follower(build_id, offset)
        try:
            for ev in self._http.events(resp, f"following build {build_id}"):
                line = f.event(ev)
                if line is not None and on_log is not None:
                    on_log(line)
                if f.ended is not None:
                    break
        finally:
            resp.close()
        return f.result(check)

    def get_build(self, template_id: str, build_id: str) -> Build:
        """A build of the team's template: its state, reason and step results."""
        return Build.from_json(self._http.json(R.GET_BUILD, {"id": template_id, "build": build_id}))

    def list_builds(self, template_id: str) -> List[Build]:
        """The template's builds, newest first (a built-in's list is empty)."""
        builds: List[Build] = BUILD_LIST.read(self._http.json(R.LIST_BUILDS, {"id": template_id}))["builds"]
        return builds

    def logs(self, template_id: str, build_id: str, offset: int = 0) -> BuildLogs:
        """A page of a build's log from line offset (at most 1000 lines)."""
        return BuildLogs.from_json(self._http.json(R.BUILD_LOGS, {"id": template_id, "build": build_id},
                                                   params=R.BUILD_LOGS.params(offset=offset)))

    def list(self) -> List[Template]:
        """The built-ins and the team's own templates (``builtin`` tells them apart)."""
        templates: List[Template] = TEMPLATE_LIST.read(self._http.json(R.LIST_TEMPLATES))["templates"]
        return templates

    def get(self, template_id: str) -> Template:
        """A built-in template or one of the team's own (NotFoundError otherwise)."""
        return Template.from_json(self._http.json(R.GET_TEMPLATE, {"id": template_id}))

    def delete(self, template_id: str) -> bool:
        """Delete one of the team's templates; False if there was none of that name.

        Raises:
            ConflictError: Sandboxes of it run or are paused, or a build of it runs.
            InvalidArgumentError: It is a built-in.
        """
        try:
            self._http.send(R.DELETE_TEMPLATE, {"id": template_id})
            return True
        except E.NotFoundError:
            return False

    def close(self) -> None:
        """Release the connections."""
        self._http.close()

    def __enter__(self) -> "Templates":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()
