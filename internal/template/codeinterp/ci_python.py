"""Python contexts: one IPython kernel process per context (ci_kernel.py), driven over
pipes."""

import json
import os
import sys

import ci_contexts as cc
import ci_procs

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
KERNEL = os.path.join(LIB_DIR, "ci_kernel.py")
# matplotlib's inline backend: plt.show() and the end of a cell publish figures as PNG.
MPL_BACKEND = "module://matplotlib_inline.backend_inline"
START_TIMEOUT = 60


def drains_first(msg):
    """Whether the reader drains the output pipes before it queues the kernel's event msg:
    before the idle status only, as the kernel wrote all of the cell's output before it.
    A display, result or error is queued at once: the kernel waited until the pipes were
    empty before it wrote one (see ci_kernel), so what they hold now came after it. Nor
    before the cell's execute_input: output it found there may have been written after
    the displays that follow execute_input in the events pipe, and would come before them."""
    return msg.get("msg_type") == "status"


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
        self._merged_reader(self.ev, self.proc.stdout, self.proc.stderr, drains_first)
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
