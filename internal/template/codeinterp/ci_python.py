"""Python contexts: a real IPython kernel (Debian's ipykernel) driven by jupyter_client."""

import os
import queue
import signal
import time

import ci_contexts as cc

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
KERNEL_CONFIG = os.path.join(LIB_DIR, "ipython_kernel_config.py")
RUNTIME_DIR = os.environ.get("JUPYTER_RUNTIME_DIR", "/tmp/warren-ci/jupyter")
# matplotlib's inline backend: plt.show() and the end of a cell publish figures as PNG.
MPL_BACKEND = "module://matplotlib_inline.backend_inline"
START_TIMEOUT = 60


class PythonContext(cc.Context):
    language = "python"
    # ipykernel may be in C code that checks for signals rarely (numpy, a C extension).
    give_up_seconds = 15.0
    # A repeated SIGINT that lands after the KeyboardInterrupt would hit the next cell.
    reinterrupt_seconds = 5.0

    def __init__(self, user, cwd):
        super().__init__(user, cwd)
        self.km = None
        self.kc = None

    def _pid(self):
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        return proc.pid if proc is not None else None

    def _alive(self):
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        return proc is not None and proc.poll() is None

    def _start(self):
        from jupyter_client import KernelManager  # imported late: slow, and only Python needs it

        os.makedirs(RUNTIME_DIR, mode=0o711, exist_ok=True)
        # cache_ports would pick new ports after the connection file is written.
        km = KernelManager(kernel_name="python3", cache_ports=False)
        km.connection_file = os.path.join(RUNTIME_DIR, "kernel-%s.json" % self.id)
        km.write_connection_file()
        if self.user.switch:
            # The kernel runs as the user and must read its connection file.
            os.chown(km.connection_file, self.user.uid, self.user.gid)
        kw = dict(self.user.popen_kwargs())
        kw.update(
            cwd=self.cwd,
            env=self.user.env({"MPLBACKEND": MPL_BACKEND, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}),
            extra_arguments=["--config=" + KERNEL_CONFIG],
        )
        self.km = km
        km.start_kernel(**kw)
        kc = km.client()
        kc.start_channels()
        self.kc = kc
        try:
            kc.wait_for_ready(timeout=START_TIMEOUT)
        except RuntimeError as e:
            self._stop()
            raise RuntimeError("the IPython kernel did not become ready: %s" % e) from None

    def _stop(self):
        kc, km = self.kc, self.km
        self.kc = self.km = None
        if kc is not None:
            try:
                kc.stop_channels()
            except Exception:
                pass
        if km is not None:
            try:
                km.shutdown_kernel(now=True)
            except Exception:
                pid = getattr(getattr(km.provisioner, "process", None), "pid", None)
                if pid:
                    cc.kill_group(pid, signal.SIGKILL)
            try:
                km.cleanup_resources()
            except Exception:
                pass

    def _interrupt(self):
        pid = self._pid()
        if pid:
            cc.kill_group(pid, signal.SIGINT)  # ipykernel raises KeyboardInterrupt

    def _begin(self, code, env):
        self._drain_shell()
        if env:
            self._silent(_env_set_code(env))
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        return _Run(self, msg_id, env)

    def _after(self, run):
        if run.env and self._alive():
            self._silent(_env_restore_code())
        self._drain_shell()

    def _silent(self, code, timeout=30):
        """Runs bookkeeping code without output or history and waits for its reply."""
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive():
            try:
                reply = self.kc.get_shell_msg(timeout=0.5)
            except queue.Empty:
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return

    def _drain_shell(self):
        """Drops execute replies nobody waits for (the runs follow iopub)."""
        while True:
            try:
                self.kc.get_shell_msg(timeout=0)
            except queue.Empty:
                return


class _Run:
    """One execution: follows the kernel's iopub messages for msg_id until the kernel
    reports itself idle for it."""

    def __init__(self, ctx, msg_id, env):
        self.ctx = ctx
        self.msg_id = msg_id
        self.env = env
        self.last_alive_check = time.monotonic()

    def poll(self, timeout):
        lines = []
        kc = self.ctx.kc
        wait = timeout
        while True:
            try:
                msg = kc.get_iopub_msg(timeout=wait)
            except queue.Empty:
                break
            wait = 0  # drain what is there, then return
            if msg.get("parent_header", {}).get("msg_id") != self.msg_id:
                continue
            line, done = _convert(msg)
            if line is not None:
                lines.append(line)
            if done:
                return lines, True
            if len(lines) >= 100:
                return lines, False
        now = time.monotonic()
        if now - self.last_alive_check >= 0.5 or not lines:
            self.last_alive_check = now
            if not self.ctx._alive():
                self.env = {}
                lines.append(cc.dead_line("Python"))
                return lines, True
        return lines, False


def _convert(msg):
    """Maps an iopub message to an NDJSON line object (or None) and whether it ends the run."""
    kind, content = msg["msg_type"], msg["content"]
    if kind == "status":
        return None, content.get("execution_state") == "idle"
    if kind == "execute_input":
        return {"type": "number_of_executions", "execution_count": content.get("execution_count")}, False
    if kind == "stream":
        stream = "stderr" if content.get("name") == "stderr" else "stdout"
        return {"type": stream, "text": content.get("text", ""), "timestamp": cc.now_iso()}, False
    if kind in ("execute_result", "display_data"):
        line = {"type": "result", "is_main_result": kind == "execute_result"}
        line.update(cc.map_bundle(content.get("data", {})))
        return line, False
    if kind == "error":
        tb = "\n".join(content.get("traceback") or [])
        return {"type": "error", "name": content.get("ename", "Error"),
                "value": content.get("evalue", ""), "traceback": tb}, False
    return None, False


def _env_set_code(env):
    return ("import os as _warren_os\n"
            "_warren_saved_env = {k: _warren_os.environ.get(k) for k in %r}\n"
            "_warren_os.environ.update(%r)\n" % (list(env), dict(env)))


def _env_restore_code():
    return ("for _warren_k, _warren_v in _warren_saved_env.items():\n"
            "    if _warren_v is None:\n"
            "        _warren_os.environ.pop(_warren_k, None)\n"
            "    else:\n"
            "        _warren_os.environ[_warren_k] = _warren_v\n"
            "del _warren_saved_env, _warren_k, _warren_v, _warren_os\n")
