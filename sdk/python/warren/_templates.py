"""Template builds, shared by the sync and async clients: the build models, the request
(JSON, or multipart with a Dockerfile and a build context), the build context as a tar
archive (less what .dockerignore leaves out, as ``warren template build`` does), and
the failure of a build as :class:`~warren.BuildError`. Nothing here talks to the server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, ClassVar, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import _errors as E
from ._http import SSEEvent, stream_error
from ._routes import BUILD_TEMPLATE
from ._wire import Wire, list_of, to_bool, to_int, to_opt_str, to_str, to_time
from .models import Template

__all__ = ["BuildStep", "BuildStepResult", "Build", "BuildLogLine", "BuildLogs", "BuildStarted", "ReadyCheck"]

#: The most bytes of file content a build context may hold by default (the server's
#: default limit; it answers 413 beyond its own).
DEFAULT_MAX_CONTEXT = 512 << 20

#: How many of a failed build's last log lines BuildError keeps.
LAST_LINES = 20

PathArg = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class BuildStep:
    """One step of a build from steps: RUN, COPY, ENV, WORKDIR or USER. Make them with
    :meth:`run`, :meth:`copy`, :meth:`env`, :meth:`workdir` and :meth:`user`.

    Attributes:
        type: RUN, COPY, ENV, WORKDIR or USER.
        args: RUN [command]; COPY [src, dst, owner?] (src inside the build context);
            ENV [key, value, ...]; WORKDIR [dir]; USER [user].
        force: Rerun the step (and every later one) even when its layer is cached.
    """

    type: str
    args: Sequence[str]
    force: bool = False

    @classmethod
    def run(cls, command: str, *, force: bool = False) -> "BuildStep":
        """A shell command, run with /bin/sh -c as the build's user."""
        return cls("RUN", [command], force)

    @classmethod
    def copy(cls, src: str, dst: str, owner: Optional[str] = None, *, force: bool = False) -> "BuildStep":
        """Files of the build context (src, relative to it; wildcards allowed) to dst."""
        return cls("COPY", [src, dst] + ([owner] if owner else []), force)

    @classmethod
    def env(cls, values: Mapping[str, str], *, force: bool = False) -> "BuildStep":
        """Environment variables for the later steps and the template's sandboxes."""
        return cls("ENV", [x for kv in values.items() for x in kv], force)

    @classmethod
    def workdir(cls, path: str, *, force: bool = False) -> "BuildStep":
        """The working directory of the later steps and the sandboxes (made if missing)."""
        return cls("WORKDIR", [path], force)

    @classmethod
    def user(cls, name: str, *, force: bool = False) -> "BuildStep":
        """The user of the later steps and the sandboxes."""
        return cls("USER", [name], force)

    def to_json(self) -> Dict[str, Any]:
        """The step as the API takes it."""
        out: Dict[str, Any] = {"type": self.type.upper(), "args": list(self.args)}
        if self.force:
            out["force"] = True
        return out


@dataclass(frozen=True)
class ReadyCheck:
    """When a template's start command is ready: one of port, url, process, file, cmd.

    Attributes:
        timeout: Seconds to wait for it (0 = the server's default, 60 s).
    """

    port: int = 0
    url: str = ""
    process: str = ""
    file: str = ""
    cmd: str = ""
    timeout: int = 0

    def to_json(self) -> Dict[str, Any]:
        """The check as the API takes it (only what is set)."""
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class BuildStepResult:
    """What became of one step of a build.

    Attributes:
        index: The step's position, from 0.
        key: The cache key of its layer.
        cached: The layer came from the cache (the step did not run).
        exit_code: A RUN step's exit code.
        duration_ms: How long the step took.
    """

    index: int
    key: str
    cached: bool
    exit_code: int
    duration_ms: int

    WIRE: ClassVar[Wire] = Wire("BuildStepResult", {
        "index": ("index", to_int), "key": ("key", to_str), "cached": ("cached", to_bool),
        "exit_code": ("exit_code", to_int), "duration_ms": ("duration_ms", to_int),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BuildStepResult":
        """Decode a BuildStepResult object."""
        return cls(**cls.WIRE.read(data))


@dataclass(frozen=True)
class Build:
    """A template build.

    Attributes:
        build_id: Its id ("bld_...").
        template_id: The template it builds.
        state: "waiting", "building", "ready" or "error".
        reason: Why it failed (the step, its exit code and its last output), or None.
        steps: The result of each step done so far (a failed step has none).
        created_at, finished_at: When it was made and when it ended (None while it runs).
    """

    build_id: str
    template_id: str
    state: str
    reason: Optional[str]
    steps: List[BuildStepResult]
    created_at: Optional[datetime]
    finished_at: Optional[datetime]

    WIRE: ClassVar[Wire] = Wire("Build", {
        "build_id": ("id", to_str), "template_id": ("template_id", to_str), "state": ("state", to_str),
        "reason": ("reason", to_opt_str), "steps": ("steps", list_of(BuildStepResult.from_json)),
        "created_at": ("created_at", to_time), "finished_at": ("finished_at", to_time),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Build":
        """Decode a Build object."""
        return cls(**cls.WIRE.read(data))

    @property
    def done(self) -> bool:
        """The build has ended (ready or error)."""
        return self.state in ("ready", "error")

    @property
    def cached_steps(self) -> List[int]:
        """The indexes (from 0) of the steps taken from the cache."""
        return [s.index for s in self.steps if s.cached]


BUILD_LIST = Wire("BuildList", {"builds": ("builds", list_of(Build.from_json))})


@dataclass(frozen=True)
class BuildLogLine:
    """One line of a build's log: its number (offset, from 0), time, level and message."""

    offset: int
    time: Optional[datetime]
    level: str
    message: str

    WIRE: ClassVar[Wire] = Wire("BuildLogLine", {
        "offset": ("offset", to_int), "time": ("time", to_time), "level": ("level", to_str),
        "message": ("message", to_str),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BuildLogLine":
        """Decode a BuildLogLine object."""
        return cls(**cls.WIRE.read(data))


@dataclass(frozen=True)
class BuildLogs:
    """A page of a build's log (at most 1000 lines), where the next page starts, and
    the build's state when the page was read."""

    lines: List[BuildLogLine]
    next_offset: int
    state: str

    WIRE: ClassVar[Wire] = Wire("BuildLogs", {
        "lines": ("lines", list_of(BuildLogLine.from_json)), "next_offset": ("next_offset", to_int),
        "state": ("state", to_str),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BuildLogs":
        """Decode a BuildLogs object."""
        return cls(**cls.WIRE.read(data))


@dataclass(frozen=True)
class BuildStarted:
    """The answer to a build request: the template and its new build."""

    template: Template
    build: Build

    WIRE: ClassVar[Wire] = Wire("BuildStarted", {
        "template": ("template", Template.from_json), "build": ("build", Build.from_json),
    })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BuildStarted":
        """Decode a BuildStarted object."""
        return cls(**cls.WIRE.read(data))


# --- failures -------------------------------------------------------------------

_STEP = re.compile(r"^step (\d+)\b")
_EXIT = re.compile(r"exit code (-?\d+)")


def build_error(build: Build, lines: Sequence[str]) -> E.BuildError:
    """The BuildError of an ended build in state error; lines are the log messages the
    client saw (the last LAST_LINES are kept). The failed step and its exit code are
    read from the server's reason ("step 3 (RUN ...) failed with exit code 2; ...")."""
    reason = build.reason or "the build failed without a reason"
    m = _STEP.search(reason)
    x = _EXIT.search(reason)
    # The server's own closing line repeats the reason: leave it out of the tail.
    tail = [ln for ln in lines if not ln.startswith("build failed: ")][-LAST_LINES:]
    return E.BuildError(build, reason, step=int(m.group(1)) if m else None,
                        exit_code=int(x.group(1)) if x else None, last_lines=tail)


# --- the request ----------------------------------------------------------------


def build_body(
    name: str, *, from_template: Optional[str], from_image: Optional[str], steps: Optional[Sequence[Any]],
    start_cmd: Optional[str], ready: Optional[Union[ReadyCheck, Mapping[str, Any]]], env: Optional[Mapping[str, str]],
    workdir: Optional[str], user: Optional[str], timeout: Optional[float], build_args: Optional[Mapping[str, str]],
) -> Dict[str, Any]:
    """The BuildRequest JSON (the body, or a multipart build's spec part)."""
    if not name:
        raise ValueError("name the template (name=...): the id sandboxes are created from")
    step_json = None
    if steps is not None:
        step_json = [s.to_json() if isinstance(s, BuildStep) else dict(s) for s in steps]
    ready_json = None
    if ready is not None:
        ready_json = ready.to_json() if isinstance(ready, ReadyCheck) else dict(ready)
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must not be negative (seconds; None = the server's limit)")
    return BUILD_TEMPLATE.body(
        name=name, from_template=from_template, from_image=from_image, steps=step_json, start_cmd=start_cmd,
        ready=ready_json, env=dict(env) if env else None, workdir=workdir, user=user,
        timeout=int(timeout) if timeout else None, build_args=dict(build_args) if build_args else None,
    )


def read_dockerfile(dockerfile: Optional[PathArg], dockerfile_text: Optional[str],
                    context: Optional[PathArg], has_steps: bool) -> Optional[bytes]:
    """The Dockerfile's bytes: dockerfile_text, the file dockerfile, or, for a build with
    a context and no steps, <context>/Dockerfile (as ``warren template build``)."""
    if dockerfile is not None and dockerfile_text is not None:
        raise ValueError("give dockerfile (a path) or dockerfile_text, not both")
    if dockerfile_text is not None:
        return dockerfile_text.encode("utf-8")
    if dockerfile is None and context is not None and not has_steps:
        dockerfile = os.path.join(os.fspath(context), "Dockerfile")
    if dockerfile is None:
        return None
    try:
        with open(dockerfile, "rb") as f:
            data = f.read((1 << 20) + 1)
    except OSError as err:
        raise ValueError(f"the Dockerfile {os.fspath(dockerfile)}: {err.strerror}; give one with dockerfile=") from err
    if len(data) > 1 << 20:
        raise ValueError(f"the Dockerfile {os.fspath(dockerfile)} is larger than 1 MiB")
    return data


class Multipart:
    """A multipart/form-data body (spec, dockerfile, context) that can be produced again
    for a retry: the context is a spooled temporary file read in chunks."""

    CHUNK = 256 << 10

    def __init__(self, spec: Mapping[str, Any], dockerfile: Optional[bytes], context: Optional[IO[bytes]]) -> None:
        self.boundary = "warren-" + secrets.token_hex(16)
        self._head: List[bytes] = [self._part("spec", None, json.dumps(spec).encode("utf-8"))]
        if dockerfile is not None:
            self._head.append(self._part("dockerfile", "Dockerfile", dockerfile))
        self._context = context

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _header(self, name: str, filename: Optional[str]) -> bytes:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        ctype = "application/octet-stream" if filename else "application/json"
        return f"--{self.boundary}\r\nContent-Disposition: {disp}\r\nContent-Type: {ctype}\r\n\r\n".encode()

    def _part(self, name: str, filename: Optional[str], data: bytes) -> bytes:
        return self._header(name, filename) + data + b"\r\n"

    def chunks(self) -> Iterator[bytes]:
        """The whole body, from the start."""
        yield from self._head
        if self._context is not None:
            self._context.seek(0)
            yield self._header("context", "context.tar")
            while True:
                b = self._context.read(self.CHUNK)
                if not b:
                    break
                yield b
            yield b"\r\n"
        yield f"--{self.boundary}--\r\n".encode()

    def close(self) -> None:
        if self._context is not None:
            self._context.close()


# --- the build context ----------------------------------------------------------


def _glob_regex(pattern: str) -> "re.Pattern[str]":
    """Go's path.Match syntax as a regular expression: '*' and '?' never match '/',
    [...] is a class ('^' negates), '\\' escapes."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] == "^" else i + 1)
            if j < 0:
                raise ValueError("unterminated [ in the pattern")
            body = pattern[i + 1:j]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^/" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class IgnoreRules:
    """A .dockerignore's patterns, as ``warren template build`` reads them: each matches
    a path relative to the context, a file or a directory (and so all below it)."""

    def __init__(self, patterns: Sequence[str] = ()) -> None:
        self.patterns = list(patterns)
        self._res = [_glob_regex(p) for p in self.patterns]

    def ignored(self, rel: str) -> bool:
        q = rel
        while q not in ("", ".", "/"):
            if any(r.match(q) for r in self._res):
                return True
            q = os.path.dirname(q)
        return False

    @classmethod
    def read(cls, context: PathArg) -> "IgnoreRules":
        """<context>/.dockerignore: comments and blank lines skipped, a leading "/" or
        "./" dropped; exceptions ("!") and "**" are refused (not supported)."""
        p = os.path.join(os.fspath(context), ".dockerignore")
        try:
            with open(p, "rb") as f:
                text = f.read(1 << 20).decode("utf-8", "replace")
        except FileNotFoundError:
            return cls()
        patterns = []
        for n, line in enumerate(text.splitlines(), 1):
            pat = line.strip()
            if not pat or pat.startswith("#"):
                continue
            if pat.startswith("!") or "**" in pat:
                raise ValueError(f".dockerignore line {n} ({pat}): exceptions (!) and ** are not supported; "
                                 "list what to leave out with simple patterns")
            if pat.startswith("./"):
                pat = pat[2:]
            pat = os.path.normpath(pat.lstrip("/")) if pat.lstrip("/") else "."
            try:
                _glob_regex(pat)
            except ValueError as err:
                raise ValueError(f".dockerignore line {n} ({pat}): {err}") from err
            patterns.append(pat)
        return cls(patterns)


def tar_context(context: PathArg, max_bytes: int = DEFAULT_MAX_CONTEXT) -> IO[bytes]:
    """The directory context as a tar archive in a temporary file (regular files,
    directories and symbolic links; sockets, devices and pipes are skipped), less what
    its .dockerignore leaves out. More than max_bytes of file content is a ValueError."""
    root = os.fspath(context)
    if not os.path.isdir(root):
        raise ValueError(f"the build context {root!r} is not a directory")
    ignore = IgnoreRules.read(root)
    out = tempfile.TemporaryFile()
    total = 0
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tw:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                rel_dir = os.path.relpath(dirpath, root)
                for name in sorted(dirnames) + sorted(filenames):
                    full = os.path.join(dirpath, name)
                    rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                    if ignore.ignored(rel):
                        if name in dirnames:
                            dirnames.remove(name)
                        continue
                    if name in dirnames and os.path.islink(full):
                        dirnames.remove(name)  # a link to a directory is sent as a link
                    st = os.lstat(full)
                    ti = tw.gettarinfo(full, arcname=rel)
                    if not (ti.isreg() or ti.isdir() or ti.issym()):
                        continue
                    ti.uname = ti.gname = ""
                    if ti.isreg():
                        total += st.st_size
                        if total > max_bytes:
                            limit = f"{max_bytes >> 20} MiB" if max_bytes >= 1 << 20 else f"{max_bytes} bytes"
                            raise ValueError(f"the build context {root} holds more than {limit}; leave out "
                                             "what the build does not need in .dockerignore, or raise max_context_bytes")
                        with open(full, "rb") as f:
                            tw.addfile(ti, f)
                    else:
                        tw.addfile(ti)
    except BaseException:
        out.close()
        raise
    return out


@dataclass
class Prepared:
    """A build request ready to send: JSON, or a multipart body."""

    json: Optional[Dict[str, Any]] = None
    multipart: Optional[Multipart] = None
    spec: Dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        if self.multipart is not None:
            self.multipart.close()


def prepare(spec: Dict[str, Any], dockerfile: Optional[bytes], context: Optional[PathArg], max_bytes: int) -> Prepared:
    """JSON for a build with neither a Dockerfile nor a context, else multipart (the
    context tarred now, into a temporary file)."""
    if dockerfile is not None and (spec.get("from_template") or spec.get("from_image") or spec.get("steps")):
        raise ValueError("give a Dockerfile or from_template/from_image and steps, not both")
    if dockerfile is None and context is None:
        return Prepared(json=spec, spec=spec)
    tar = tar_context(context, max_bytes) if context is not None else None
    return Prepared(multipart=Multipart(spec, dockerfile, tar), spec=spec)


def prepare_build(name: str, *, context: Optional[PathArg], dockerfile: Optional[PathArg],
                  dockerfile_text: Optional[str], max_context_bytes: int, **fields: Any) -> Prepared:
    """A build request from the arguments of Templates.build (fields: from_template,
    from_image, steps, start_cmd, ready, env, workdir, user, timeout, build_args)."""
    spec = build_body(name, **fields)
    has_steps = fields.get("steps") is not None or bool(fields.get("from_template") or fields.get("from_image"))
    return prepare(spec, read_dockerfile(dockerfile, dockerfile_text, context, has_steps), context, max_context_bytes)


class Follower:
    """Reads a build's log stream (SSE: "log" lines, then "end" with the build, or
    "error"), keeping the last lines for a BuildError."""

    def __init__(self, build_id: str, offset: int) -> None:
        self.build_id, self.offset = build_id, offset
        self.last: List[str] = []
        self.seen = 0
        self.ended: Optional[Build] = None

    def event(self, ev: SSEEvent) -> Optional[BuildLogLine]:
        """Take one event: a log line is returned (for on_log); an "end" is kept in
        ended; an "error" is raised."""
        if ev.event == "log":
            line = BuildLogLine.from_json(ev.data)
            self.last = (self.last + [line.message])[-LAST_LINES - 1:]
            self.seen += 1
            return line
        if ev.event == "end":
            self.ended = Build.from_json(ev.data)
        elif ev.event == "error":
            raise stream_error(ev.data)
        return None

    def result(self, check: bool) -> Build:
        """The ended build; BuildError for a failed one (with check), ConnectionError
        when the stream ended before the build."""
        if self.ended is None:
            raise E.ConnectionError(f"the log stream of build {self.build_id} ended before the build did; "
                                    f"follow it again from offset {self.offset + self.seen} or get_build()")
        if check and self.ended.state == "error":
            raise build_error(self.ended, self.last)
        return self.ended
