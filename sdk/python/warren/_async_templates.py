"""Template builds with the asyncio client: :class:`AsyncTemplates`."""

from __future__ import annotations

from types import TracebackType
import asyncio
import inspect
from typing import Any, AsyncIterator, Callable, List, Mapping, Optional, Sequence, Type, Union

from . import _errors as E
from . import _routes as R
from ._config import Config, resolve_config
from ._async import AsyncHTTP
from ._templates import (BUILD_LIST, DEFAULT_MAX_CONTEXT, Build, BuildLogLine, BuildLogs, BuildStarted, Follower, PathArg,
                         ReadyCheck, prepare_build)
from .models import TEMPLATE_LIST, Template

__all__ = ["AsyncTemplates"]

OnLog = Callable[[BuildLogLine], Any]


class AsyncTemplates:
    """The team's templates, for asyncio; see :class:`warren.Templates`. on_log may be
    a coroutine function::

        async with AsyncTemplates() as tpl:
            build = await tpl.build("my-app", context="./app")
    """

    def __init__(self, api_url: Optional[str] = None, api_key: Optional[str] = None, *,
                 request_timeout: Optional[float] = None, max_retries: Optional[int] = None,
                 config: Optional[Config] = None) -> None:
        if config is None:
            config = resolve_config(api_url, api_key, request_timeout=request_timeout, max_retries=max_retries)
        self._http = AsyncHTTP(config)

    async def build(
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
        """Like :meth:`warren.Templates.build`: build the team's template name, and (with
        wait) follow its log until it ends; on_log may be a coroutine function."""
        req = await asyncio.to_thread(prepare_build, name, context=context, dockerfile=dockerfile, dockerfile_text=dockerfile_text, max_context_bytes=max_context_bytes,
            from_template=from_template, from_image=from_image, steps=steps, start_cmd=start_cmd, ready=ready, env=env,
            workdir=workdir, user=user, timeout=timeout, build_args=build_args,
        )
        try:
            if req.multipart is not None:
                mp = req.multipart

                async def chunks() -> AsyncIterator[bytes]:
                    it = mp.chunks()
                    while True:
                        b = await asyncio.to_thread(next, it, None)
                        if b is None:
                            return
                        yield b

                raw = await self._http.json(R.BUILD_TEMPLATE, body=chunks, headers={"Content-Type": mp.content_type})
            else:
                raw = await self._http.json(R.BUILD_TEMPLATE, json=req.json)
        finally:
            req.close()
        started = BuildStarted.from_json(raw)
        if not wait:
            return started.build
        return await self.follow(started.build.template_id, started.build.build_id, on_log=on_log)

    async def follow(self, template_id: str, build_id: str, *, offset: int = 0, on_log: Optional[OnLog] = None,
                     check: bool = True) -> Build:
        """Follow a build's log from line offset (SSE) until the build ends, calling
        on_log for each line, and return the ended build; with check, a failed build
        raises :class:`~warren.BuildError`."""
        path = {"id": template_id, "build": build_id}
        resp = await self._http.send(R.FOLLOW_BUILD, path, params=R.FOLLOW_BUILD.params(offset=offset),
                                     headers={"Accept": "text/event-stream"}, stream=True)
        f = Follower(build_id, offset)
        try:
            async for ev in self._http.events(resp, f"following build {build_id}"):
                line = f.event(ev)
                if line is not None and on_log is not None:
                    r = on_log(line)
                    if inspect.isawaitable(r):
                        await r
                if f.ended is not None:
                    break
        finally:
            await resp.aclose()
        return f.result(check)

    async def get_build(self, template_id: str, build_id: str) -> Build:
        """A build of the team's template: its state, reason and step results."""
        return Build.from_json(await self._http.json(R.GET_BUILD, {"id": template_id, "build": build_id}))

    async def list_builds(self, template_id: str) -> List[Build]:
        """The template's builds, newest first (a built-in's list is empty)."""
        builds: List[Build] = BUILD_LIST.read(await self._http.json(R.LIST_BUILDS, {"id": template_id}))["builds"]
        return builds

    async def logs(self, template_id: str, build_id: str, offset: int = 0) -> BuildLogs:
        """A page of a build's log from line offset (at most 1000 lines)."""
        return BuildLogs.from_json(await self._http.json(R.BUILD_LOGS, {"id": template_id, "build": build_id},
                                                   params=R.BUILD_LOGS.params(offset=offset)))

    async def list(self) -> List[Template]:
        """The built-ins and the team's own templates (``builtin`` tells them apart)."""
        templates: List[Template] = TEMPLATE_LIST.read(await self._http.json(R.LIST_TEMPLATES))["templates"]
        return templates

    async def get(self, template_id: str) -> Template:
        """A built-in template or one of the team's own (NotFoundError otherwise)."""
        return Template.from_json(await self._http.json(R.GET_TEMPLATE, {"id": template_id}))

    async def delete(self, template_id: str) -> bool:
        """Delete one of the team's templates; False if there was none of that name.

        Raises:
            ConflictError: Sandboxes of it run or are paused, or a build of it runs.
            InvalidArgumentError: It is a built-in.
        """
        try:
            await self._http.send(R.DELETE_TEMPLATE, {"id": template_id})
            return True
        except E.NotFoundError:
            return False

    async def close(self) -> None:
        """Release the connections."""
        await self._http.close()

    async def __aenter__(self) -> "AsyncTemplates":
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        await self.close()
