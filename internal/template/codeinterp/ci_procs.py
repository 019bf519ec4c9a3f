"""JavaScript and bash contexts: one persistent child process per context."""

import codecs
import json
import os
import queue
import re
import secrets
import select
import signal
import subprocess
import threading

import ci_contexts as cc

# The longest line read from a kernel's events pipe (a display's PNG is a few MB); a
# longer one is dropped.
MAX_EVENT_BYTES = 64 << 20
# The longest part of a bash cell's output line held back waiting for its newline.
MAX_PARTIAL_LINE = 64 << 10

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
REPL_JS = os.path.join(LIB_DIR, "repl.js")
CELL_DIR = os.environ.get("WARREN_CI_CELL_DIR", "/tmp/warren-ci/cells")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProcContext(cc.Context):
    """A context backed by one child process in its own session, whose output reader
    threads feed self.events with (kind, payload) tuples; ("eof", name) marks a closed
    pipe."""

    def __init__(self, user, cwd):
        super().__init__(user, cwd)
        self.proc = None
        self.events = queue.Queue()

    def _pid(self):
        return self.proc.pid if self.proc is not None else None

    def _alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv, extra_env=None, pass_fds=(), stdin=subprocess.DEVNULL):
        self.events = queue.Queue()
        return subprocess.Popen(
            argv, cwd=self.cwd, env=self.user.env(extra_env), stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds,
            start_new_session=True, **self.user.popen_kwargs())

    def _reader(self, f, kind):
        q = self.events  # a restarted process gets a new queue; old readers keep theirs

        def loop():
            try:
                while True:
                    data = os.read(f.fileno(), 65536)
                    if not data:
                        break
                    q.put((kind, data))
            except OSError:
                pass
            finally:
                q.put(("eof", kind))
        threading.Thread(target=loop, name="ci-%s-%s" % (kind, self.id[:8]), daemon=True).start()

    def _merged_reader(self, ev, out, err, drain_first):
        """One thread reads the process's JSON event lines (ev) and its stdout and stderr
        into self.events, in the order they were written: before it queues an event for
        which drain_first(msg) is true, it queues what the output pipes hold, which was
        written before the event. An event line longer than MAX_EVENT_BYTES is dropped
        (user code can write to the pipe too)."""
        q = self.events
        streams = {out.fileno(): "stdout", err.fileno(): "stderr"}
        decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in streams}
        for fd in streams:
            os.set_blocking(fd, False)
        ev_fd = ev.fileno()
        open_fds = set(streams)

        def drain(fd):
            """Queues what fd holds now; at its end, stops watching it."""
            while fd in open_fds:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    return
                text = decoders[fd].decode(data, final=not data)
                if text:
                    q.put((streams[fd], text))
                if not data:
                    open_fds.discard(fd)

        def lines(data, state):
            """Queues the events of data, a piece of the events pipe; state holds the
            unfinished line and whether it is the end of one too long to keep."""
            buf = state["buf"] + data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                if state["skip"]:  # the end of a line that was too long
                    state["skip"] = False
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(msg, dict):
                    continue
                if drain_first(msg):
                    for fd in sorted(open_fds):
                        drain(fd)
                q.put(("event", msg))
            if len(buf) > MAX_EVENT_BYTES:
                buf, state["skip"] = b"", True
            state["buf"] = buf

        def loop():
            state = {"buf": b"", "skip": False}
            os.set_blocking(ev_fd, False)
            try:
                while True:
                    ready, _, _ = select.select([ev_fd] + sorted(open_fds), [], [])
                    if ev_fd in ready:
                        # All the events pipe holds, not one read of it: an event written
                        # before the output the select found is whole in the pipe now, and
                        # goes first, even a display of megabytes. (One written after that
                        # output either waited until it was read, or drains it first.)
                        while True:
                            try:
                                data = os.read(ev_fd, 65536)
                            except BlockingIOError:
                                break
                            if not data:
                                for fd in sorted(open_fds):
                                    drain(fd)
                                return
                            lines(data, state)
                    for fd in sorted(open_fds):
                        if fd in ready:
                            drain(fd)
            except (OSError, ValueError):
                pass
            finally:
                q.put(("eof", "events"))
        self.thread = threading.Thread(target=loop, name="ci-events-%s" % self.id[:8], daemon=True)
        self.thread.start()

    def _stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        cc.kill_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._killed()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._stopped()

    def _killed(self):
        """Runs after the process was killed, before its pipes are closed: the merged
        reader sees the end of the events pipe once the process is dead, and only then may
        the pipes close (a descriptor closed under the reader could be reused by the next
        process's pipes and read by the old reader)."""
        thread, self.thread = getattr(self, "thread", None), None
        if thread is not None:
            thread.join(timeout=5)

    def _stopped(self):
        """Closes the request and event pipes of a harness that has them."""
        for f in (getattr(self, "req", None), getattr(self, "ev", None)):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self.req = self.ev = None

    def _interrupt(self):
        if self.proc is not None:
            cc.kill_group(self.proc.pid, signal.SIGINT)

    def _discard_stale(self):
        """Drops output that arrived between executions."""
        while True:
            try:
                self.events.get_nowait()
            except queue.Empty:
                return

    def _reap(self):
        """Waits briefly for an interpreter that is going away, so it leaves no zombie."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass

    def _next_event(self, timeout):
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None


def _stream_line(kind, text):
    return {"type": kind, "text": text, "timestamp": cc.now_iso()}


def _add_stream(lines, kind, text):
    if text:
        lines.append(_stream_line(kind, text))


class BashContext(ProcContext):
    """A bash process reading commands on stdin. Each execution writes the code to a file
    that bash sources (so variables, functions and the working directory persist), then
    prints a random sentinel with the exit status on stdout and stderr."""

    language = "bash"
    # On SIGINT, return from the sourced cell (bash would otherwise exit or go on).
    prologue = "trap 'return 130 2>/dev/null' INT\n"

    def _start(self):
        self.cell_dir = os.path.join(CELL_DIR, self.id)
        os.makedirs(CELL_DIR, mode=0o711, exist_ok=True)
        self.user.make_dir(self.cell_dir, mode=0o700)
        self.proc = self._spawn(["/bin/bash", "--norc", "--noprofile"], stdin=subprocess.PIPE)
        self._reader(self.proc.stdout, "stdout")
        self._reader(self.proc.stderr, "stderr")
        self._send(self.prologue)

    def _stopped(self):
        super()._stopped()
        d = getattr(self, "cell_dir", None)
        if d:
            subprocess.run(["rm", "-rf", d], check=False)

    def _send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def _begin(self, code, env):
        self._discard_stale()
        self.executions += 1
        token = "__warren_done_%s__" % secrets.token_hex(8)
        cell = os.path.join(self.cell_dir, "cell.sh")
        with open(cell, "w") as f:
            f.write(code if code.endswith("\n") else code + "\n")
        if self.user.switch:
            os.chown(cell, self.user.uid, self.user.gid)
        for k in env:
            if not ENV_NAME_RE.match(k):
                raise ValueError("env_vars: %r is not a shell variable name" % k)
        script = "".join(_bash_env_set(k, v) for k, v in env.items())
        script += "source %s </dev/null\n__warren_rc=$?\n" % _shq(cell)
        script += "".join(_bash_env_restore(k) for k in env)
        script += "printf '%%s %%d\\n' %s \"$__warren_rc\"; printf '%%s\\n' %s >&2\n" % (token, token)
        self._send(script)
        return _BashRun(self, token)


def _shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def _bash_env_set(k, v):
    return ('if [ "${%s+x}" ]; then __warren_had_%s=1; __warren_old_%s=$%s; else __warren_had_%s=; fi; export %s=%s\n'
            % (k, k, k, k, k, k, _shq(str(v))))


def _bash_env_restore(k):
    return ('if [ "$__warren_had_%s" ]; then %s=$__warren_old_%s; else unset %s; fi; unset __warren_had_%s __warren_old_%s\n'
            % (k, k, k, k, k, k))


class _BashRun:
    def __init__(self, ctx, token):
        self.ctx = ctx
        self.token = token.encode()
        self.buf = {"stdout": b"", "stderr": b""}
        self.finished = {"stdout": False, "stderr": False}
        self.rc = None
        self.header_sent = False

    def poll(self, timeout):
        lines = []
        if not self.header_sent:
            self.header_sent = True
            lines.append({"type": "number_of_executions", "execution_count": self.ctx.executions})
        ev = self.ctx._next_event(timeout)
        while ev is not None:
            kind, data = ev
            if kind == "eof":
                self.ctx._reap()
                lines.append(cc.dead_line("bash"))
                return lines, True
            self._feed(kind, data, lines)
            if all(self.finished.values()):
                if self.rc:
                    lines.append(cc.error_line("CommandError", "exit status %d" % self.rc))
                return lines, True
            ev = self.ctx._next_event(0)
        if not self.ctx._alive():
            lines.append(cc.dead_line("bash"))
            return lines, True
        return lines, False

    def _feed(self, kind, data, lines):
        if self.finished[kind]:
            return
        buf = self.buf[kind] + data
        i = buf.find(self.token)
        if i >= 0:
            end = buf.find(b"\n", i)
            if end < 0:  # the sentinel line is not complete yet
                self.buf[kind] = buf
                return
            if kind == "stdout":
                try:
                    self.rc = int(buf[i + len(self.token):end].strip() or b"0")
                except ValueError:
                    self.rc = 1
            self.finished[kind] = True
            out, self.buf[kind] = buf[:i], b""
            if out:
                lines.append(_stream_line(kind, out.decode("utf-8", "replace")))
            return
        # Only whole lines go out, so a sentinel is never split across two lines; of a line
        # longer than MAX_PARTIAL_LINE, all but what could be the start of the sentinel
        # goes out as it comes (output without newlines must not pile up here).
        cut = buf.rfind(b"\n") + 1
        if len(buf) - cut > MAX_PARTIAL_LINE:
            cut = _utf8_boundary(buf, len(buf) - (len(self.token) - 1))
        for chunk in buf[:cut].splitlines(keepends=True):
            lines.append(_stream_line(kind, chunk.decode("utf-8", "replace")))
        self.buf[kind] = buf[cut:]


def _utf8_boundary(buf, i):
    """The start of the UTF-8 character that holds byte i of buf (i itself when it
    starts one), looking back at most three bytes."""
    for _ in range(3):
        if i <= 0 or i >= len(buf) or buf[i] & 0xC0 != 0x80:
            break
        i -= 1
    return i


class NodeContext(ProcContext):
    """A Node.js process running repl.js: requests go in on one pipe, JSON events (stdout,
    stderr, result, error, done) come back on another."""

    language = "javascript"

    def _start(self):
        req_r, req_w = os.pipe()
        ev_r, ev_w = os.pipe()
        try:
            self.proc = self._spawn(
                ["node", REPL_JS],
                extra_env={"WARREN_CI_REQ_FD": str(req_r), "WARREN_CI_EV_FD": str(ev_w)},
                pass_fds=(req_r, ev_w))
        finally:
            os.close(req_r)
            os.close(ev_w)
        self.req = os.fdopen(req_w, "wb")
        self.ev = os.fdopen(ev_r, "rb", buffering=0)
        self.seq = 0
        # console output comes as events; the process's own stdout and stderr (what child
        # processes and fs.writeSync(1) write) as output of whatever runs. The reader drains
        # the pipes before a cell's result, error and end, so that all the cell wrote comes
        # before them; not before each console line, which would pull in output written
        # after it (Node cannot wait for the pipes to empty as ci_kernel does): between
        # console output and fd output the order is as the reader sees it.
        self._merged_reader(self.ev, self.proc.stdout, self.proc.stderr,
                            lambda msg: msg.get("type") in ("result", "error", "done"))
        while True:
            ev = self._next_event(10)
            if ev is None or ev[0] == "eof":
                raise RuntimeError("node did not start (repl.js)")
            if ev[0] == "event" and ev[1].get("type") == "ready":
                return

    def _begin(self, code, env):
        self._discard_stale()
        self.seq += 1
        self.executions += 1
        msg = json.dumps({"id": self.seq, "code": code, "env": {k: str(v) for k, v in env.items()}})
        self.req.write(msg.encode() + b"\n")
        self.req.flush()
        return _NodeRun(self, self.seq)


class _NodeRun:
    def __init__(self, ctx, seq):
        self.ctx = ctx
        self.seq = seq
        self.header_sent = False

    def poll(self, timeout):
        lines = []
        if not self.header_sent:
            self.header_sent = True
            lines.append({"type": "number_of_executions", "execution_count": self.ctx.executions})
        ev = self.ctx._next_event(timeout)
        while ev is not None:
            kind, payload = ev
            if kind == "eof":
                self.ctx._reap()
                lines.append(cc.dead_line("Node.js"))
                return lines, True
            if kind in ("stdout", "stderr"):
                _add_stream(lines, kind, payload)
            elif payload.get("id") == self.seq:
                t = payload.get("type")
                if t in ("stdout", "stderr"):
                    _add_stream(lines, t, payload.get("text", ""))
                elif t == "result":
                    line = {"type": "result", "is_main_result": True}
                    line.update(cc.map_bundle({"text/plain": payload.get("text", "")}))
                    lines.append(line)
                elif t == "error":
                    lines.append(cc.error_line(payload.get("name") or "Error", payload.get("value") or "",
                                               payload.get("traceback") or ""))
                elif t == "done":
                    return lines, True
            ev = self.ctx._next_event(0)
        if not self.ctx._alive():
            lines.append(cc.dead_line("Node.js"))
            return lines, True
        return lines, False
