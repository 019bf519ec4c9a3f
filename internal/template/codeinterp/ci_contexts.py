"""Execution contexts of the Warren code interpreter and the registry that holds them.

A context is one persistent interpreter (an IPython kernel, a Node.js REPL or a bash
process) running as the sandbox user. Executions in one context are serialised by its
exec_lock; the lock also guards starting, restarting and stopping the interpreter, so the
interpreter's pipes and sockets are only ever used by the thread holding it.
"""

import datetime
import os
import pwd
import signal
import threading
import time
import uuid

DEFAULT_CWD = "/home/user"
SANDBOX_USER = "user"
KEEPALIVE_SECONDS = 5.0


class NotFound(Exception):
    """Answered with 404 and the message as plain text."""


class BadRequest(Exception):
    """Answered with 400 and the message as plain text."""


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def normalize_language(language):
    """Maps the language names the SDKs send to python, javascript or bash."""
    lang = (language or "python").strip().lower()
    if lang in ("python", "python3", "py", "ipython"):
        return "python"
    if lang in ("javascript", "js", "typescript", "ts", "node", "nodejs"):
        return "javascript"
    if lang in ("bash", "sh", "shell"):
        return "bash"
    raise BadRequest("unsupported language %r: use python, javascript, typescript or bash" % language)


class User:
    """Who interpreters run as: the sandbox user when the server runs as root, else the
    server's own user (development)."""

    def __init__(self):
        self.switch = os.geteuid() == 0
        try:
            pw = pwd.getpwnam(SANDBOX_USER)
            self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        except KeyError:
            self.uid, self.gid, self.home = 1000, 1000, DEFAULT_CWD
        if not self.switch:
            self.uid, self.gid = os.geteuid(), os.getegid()
            self.home = os.environ.get("HOME", self.home)

    def popen_kwargs(self):
        """Popen arguments that drop to the user (empty when not root)."""
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def env(self, extra=None):
        """The environment of an interpreter: the server's, minus its own settings, with
        the user's identity."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WARREN_CI_", "JUPYTER_", "JPY_"))}
        if self.switch:
            env.update(HOME=self.home, USER=SANDBOX_USER, LOGNAME=SANDBOX_USER, SHELL="/bin/bash")
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env.setdefault("LANG", "C.UTF-8")
        env.update(extra or {})
        return env

    def make_dir(self, path, mode=0o755):
        """Creates path (and parents) owned by the user if it does not exist."""
        if os.path.isdir(path):
            return
        os.makedirs(path, mode=mode, exist_ok=True)
        if self.switch:
            os.chown(path, self.uid, self.gid)


def map_bundle(data):
    """Maps a Jupyter MIME bundle to the fields of an E2B result line."""
    known = {
        "text/html": "html", "text/markdown": "markdown", "image/svg+xml": "svg",
        "image/png": "png", "image/jpeg": "jpeg", "application/pdf": "pdf",
        "text/latex": "latex", "application/json": "json",
        "application/javascript": "javascript", "e2b/data": "data", "e2b/chart": "chart",
    }
    out, extra = {}, {}
    for mime, value in data.items():
        if value is None:
            continue
        if mime == "text/plain":
            out["text"] = strip_quotes(value)
        elif mime in ("image/png", "image/jpeg", "application/pdf") and isinstance(value, str):
            out[known[mime]] = "".join(value.split())  # base64 without line breaks
        elif mime in known:
            out[known[mime]] = value
        else:
            extra[mime] = value
    if extra:
        out["extra"] = extra
    return out


def strip_quotes(text):
    """A str's repr is shown as its content, exactly as E2B's reference server does it
    (template/server/api/models/result.py since October 2024): a text that starts and
    ends with the same quote, single or double, loses its first and last character. So
    'abc' gives abc and "it's" (Python's repr of it's) gives it's; a lone quote gives "".
    """
    if text and text[0] in "'\"" and text.endswith(text[0]):
        return text[1:-1]
    return text


def kill_group(pid, sig):
    """Signals the process group led by pid (interpreters start in their own session),
    never the server's own group."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    try:
        if pgid == pid and pgid != os.getpgrp():
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


class Context:
    """Base of the interpreter contexts. Subclasses implement _start, _stop, _alive,
    _begin (returning a run with poll(timeout) -> (lines, done)), _interrupt and
    _after (cleanup after a run)."""

    language = ""
    # Seconds after the first interrupt before the context gives up on the run, and
    # between repeated interrupts until then.
    give_up_seconds = 5.0
    reinterrupt_seconds = 1.0

    def __init__(self, user, cwd):
        self.id = str(uuid.uuid4())
        self.user = user
        self.cwd = cwd or DEFAULT_CWD
        self.exec_lock = threading.Lock()
        self.closed = False
        self.executions = 0

    def describe(self):
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    def ensure_started(self):
        """Starts the interpreter if it is not running. Preconditions: exec_lock held."""
        if self.closed:
            raise NotFound("context %s was removed" % self.id)
        if not self._alive():
            self._stop()
            self.user.make_dir(self.cwd)
            self._start()

    def execute(self, code, env, timeout, cancelled):
        """Runs code and yields the NDJSON line objects of the E2B protocol, ending with
        end_of_execution. cancelled() reports a client that went away; it and the timeout
        (seconds, or None) interrupt the run, which keeps the context's state."""
        with self.exec_lock:
            yield from self._execute_locked(code, env, timeout, cancelled)
        yield {"type": "end_of_execution"}

    def _execute_locked(self, code, env, timeout, cancelled):
        try:
            self.ensure_started()
        except NotFound as e:  # removed while this request waited for it
            yield error_line("ContextNotFound", str(e))
            return
        except Exception as e:  # the interpreter could not start: say so in the stream
            yield error_line("ContextStartError", "starting the %s interpreter failed: %s" % (self.language, e))
            return
        try:
            run = self._begin(code, env or {})
        except Exception as e:
            yield error_line("ExecutionError", "could not run the code: %s" % e)
            return
        start = last = time.monotonic()
        deadline = start + timeout if timeout else None
        interrupted = reinterrupted = None
        done = False
        while not done:
            lines, done = run.poll(0.2)
            now = time.monotonic()
            for line in lines:
                last = now
                yield line
            if done:
                break
            if interrupted is None and (cancelled() or (deadline is not None and now >= deadline)):
                interrupted = reinterrupted = now
                self._interrupt()
            elif interrupted is not None and now - interrupted >= self.give_up_seconds:
                yield from self._give_up()
                return
            elif interrupted is not None and now - reinterrupted >= self.reinterrupt_seconds:
                reinterrupted = now
                self._interrupt()
            if now - last >= KEEPALIVE_SECONDS:
                last = now
                yield {"type": "keepalive"}
        self._after(run)

    def _give_up(self):
        """The interpreter ignores interrupts: kill it (it restarts on the next run)."""
        self._stop()
        yield error_line("TimeoutError", "the %s interpreter did not stop when interrupted and was restarted; its state is lost" % self.language)

    def restart(self):
        self._kill_now()
        with self.exec_lock:
            self._stop()
            self.ensure_started()

    def close(self):
        self.closed = True
        self._kill_now()
        with self.exec_lock:
            self._stop()

    def _kill_now(self):
        """Kills the interpreter without the lock, so that a running execution ends
        (it then reports UnexpectedEndOfExecution)."""
        pid = self._pid()
        if pid:
            kill_group(pid, signal.SIGKILL)

    def _after(self, run):
        pass


def error_line(name, value, traceback=""):
    return {"type": "error", "name": name, "value": value, "traceback": traceback or value}


def dead_line(language):
    return error_line("UnexpectedEndOfExecution",
                      "the %s interpreter exited during the execution; it restarts on the next one" % language)


class Registry:
    """All contexts by id, and the lazily created default context of each language."""

    def __init__(self, factories, user):
        self.factories = factories  # language -> class(user, cwd)
        self.user = user
        self.lock = threading.Lock()
        self.contexts = {}
        self.defaults = {}

    def create(self, language, cwd, start=True):
        lang = normalize_language(language)
        ctx = self.factories[lang](self.user, cwd or DEFAULT_CWD)
        if start:
            with ctx.exec_lock:
                ctx.ensure_started()  # errors reach the caller; the context is not kept
        with self.lock:
            self.contexts[ctx.id] = ctx
        return ctx

    def default(self, language):
        lang = normalize_language(language)
        with self.lock:
            ctx_id = self.defaults.get(lang)
            if ctx_id in self.contexts:
                return self.contexts[ctx_id]
            ctx = self.factories[lang](self.user, DEFAULT_CWD)
            self.contexts[ctx.id] = ctx
            self.defaults[lang] = ctx.id
            return ctx

    def get(self, ctx_id):
        with self.lock:
            ctx = self.contexts.get(ctx_id)
        if ctx is None:
            raise NotFound("context %s not found" % ctx_id)
        return ctx

    def for_execution(self, context_id, language):
        if context_id and language:
            raise BadRequest("give either context_id or language, not both")
        if context_id:
            return self.get(context_id)
        return self.default(language)

    def list(self):
        with self.lock:
            return [c.describe() for c in self.contexts.values()]

    def remove(self, ctx_id):
        ctx = self.get(ctx_id)
        with self.lock:
            self.contexts.pop(ctx_id, None)
            for lang, d in list(self.defaults.items()):
                if d == ctx_id:
                    del self.defaults[lang]
        ctx.close()

    def restart(self, ctx_id):
        self.get(ctx_id).restart()

    def kill_all(self):
        """Kills every interpreter at once (server shutdown)."""
        with self.lock:
            ctxs = list(self.contexts.values())
        for ctx in ctxs:
            ctx.closed = True
            ctx._kill_now()
