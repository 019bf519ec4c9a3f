"""Python contexts: one IPython kernel process per context (ci_kernel.py), driven over
pipes."""

import codecs
import json
import os
import select
import sys
import threading

import ci_contexts as cc
import ci_procs

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
KERNEL = os.path.join(LIB_DIR, "ci_kernel.py")
# matplotlib's inline backend: plt.show() and the end of a cell publish figures as PNG.
MPL_BACKEND = "module://matplotlib_inline.backend_inline"
START_TIMEOUT = 60
# Events the kernel writes only once the output pipes are empty (ci_kernel.SETTLED).
SETTLED = ("display_data", "execute_result", "error")


class PythonContext(ci_procs.ProcContext):
    language = "python"
    # The kernel may be in C code that checks for signals rarely (numpy, a C extension).
    give_up_seconds = 15.0
    # A repeated SIGINT that lands after the KeyboardInterrupt would hit the next cell.
    reinterrupt_seconds = 5.0

    def _start(self):
        req_r, req_w = os.pipe()
        ev_r, ev_w = os.pipe()
        try:
            self.proc = self._spawn(
                [sys.executable, KERNEL],
                extra_env={"MPLBACKEND": MPL_BACKEND, "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                           "WARREN_CI_REQ_FD": str(req_r), "WARREN_CI_EV_FD": str(ev_w)},
                pass_fds=(req_r, ev_w))
        finally:
            os.close(req_r)
            os.close(ev_w)
        self.req = os.fdopen(req_w, "wb")
        self.ev = os.fdopen(ev_r, "rb", buffering=0)
        self._merged_reader(self.ev, self.proc.stdout, self.proc.stderr)
        early = []
        while True:
            ev = self._next_event(START_TIMEOUT)
            if ev is None or ev[0] == "eof":
                self._stop()
                said = "".join(early).strip()[-2000:]
                raise RuntimeError("the Python kernel did not start%s" % (": " + said if said else ""))
            if ev[0] == "event" and ev[1].get("msg_type") == "ready":
                return
            if ev[0] in ("stdout", "stderr"):
                early.append(ev[1])

    def _merged_reader(self, ev, out, err):
        """One thread reads the kernel's events and its stdout and stderr into self.events,
        in the order they were written. Before it queues the idle status it drains both
        output pipes: the kernel wrote all of the cell's output before it. A display,
        result or error is queued at once: the kernel waited until the pipes were empty
        before it wrote one (see ci_kernel), so what the pipes hold now came after it."""
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

        def loop():
            buf, skip = b"", False
            try:
                while True:
                    ready, _, _ = select.select([ev_fd] + sorted(open_fds), [], [])
                    if ev_fd in ready:
                        data = os.read(ev_fd, 65536)
                        if not data:
                            for fd in sorted(open_fds):
                                drain(fd)
                            return
                        buf += data
                        while b"\n" in buf:
                            raw, buf = buf.split(b"\n", 1)
                            if skip:  # the end of a line that was too long
                                skip = False
                                continue
                            try:
                                msg = json.loads(raw)
                            except ValueError:
                                continue
                            if msg.get("msg_type") not in SETTLED:
                                for fd in sorted(open_fds):
                                    drain(fd)
                            q.put(("event", msg))
                        if len(buf) > ci_procs.MAX_EVENT_BYTES:
                            # User code can write to the pipe too: never hold more.
                            buf, skip = b"", True
                    for fd in sorted(open_fds):
                        if fd in ready:
                            drain(fd)
            except (OSError, ValueError):
                pass
            finally:
                q.put(("eof", "events"))
        self.thread = threading.Thread(target=loop, name="ci-python-%s" % self.id[:8], daemon=True)
        self.thread.start()

    def _killed(self):
        # The reader sees the end of the events pipe once the kernel is dead; the pipes
        # are closed only after that: a descriptor closed under the reader could be
        # reused by the next kernel's pipes and read by the old reader.
        thread, self.thread = getattr(self, "thread", None), None
        if thread is not None:
            thread.join(timeout=5)

    def _begin(self, code, env):
        self._discard_stale()
        msg = json.dumps({"code": code, "env": {str(k): str(v) for k, v in env.items()}})
        self.req.write(msg.encode() + b"\n")
        self.req.flush()
        return _Run(self)


class _Run:
    """One execution: the kernel's events and output until its idle status."""

    def __init__(self, ctx):
        self.ctx = ctx

    def poll(self, timeout):
        lines = []
        ev = self.ctx._next_event(timeout)
        while ev is not None:
            kind, payload = ev
            if kind == "eof":
                self.ctx._reap()
                lines.append(cc.dead_line("Python"))
                return lines, True
            if kind in ("stdout", "stderr"):
                if lines and lines[-1]["type"] == kind:
                    lines[-1]["text"] += payload  # one line per batch the reader took
                else:
                    lines.append({"type": kind, "text": payload, "timestamp": cc.now_iso()})
            else:
                line, done = _convert(payload)
                if line is not None:
                    lines.append(line)
                if done:
                    return lines, True
            if len(lines) >= 100:
                return lines, False
            ev = self.ctx._next_event(0)
        if not lines and not self.ctx._alive():
            self.ctx._reap()
            lines.append(cc.dead_line("Python"))
            return lines, True
        return lines, False


def _convert(msg):
    """Maps a kernel event to an NDJSON line object (or None) and whether it ends the run."""
    kind, content = msg.get("msg_type"), msg.get("content") or {}
    if kind == "status":
        return None, content.get("execution_state") == "idle"
    if kind == "execute_input":
        return {"type": "number_of_executions", "execution_count": content.get("execution_count")}, False
    if kind in ("execute_result", "display_data"):
        line = {"type": "result", "is_main_result": kind == "execute_result"}
        line.update(cc.map_bundle(content.get("data", {})))
        return line, False
    if kind == "error":
        tb = "\n".join(content.get("traceback") or [])
        return {"type": "error", "name": content.get("ename", "Error"),
                "value": content.get("evalue", ""), "traceback": tb}, False
    return None, False
