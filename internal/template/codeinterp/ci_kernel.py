"""The Python kernel of the Warren code interpreter: one process per context, running
IPython's InteractiveShell and driven over two pipes by the server (ci_python).

ipykernel needs a ZMQ round trip through four threads (the kernel's, its IOPub thread and
ZMQ's I/O threads on both sides) for every message; in gVisor each hop is a wake-up of
milliseconds. Here a cell is one request read from a pipe and a few events written to
another, all from the main thread.

Requests arrive as JSON lines {"code", "env"} on the descriptor WARREN_CI_REQ_FD. Events
go out as JSON lines {"msg_type", "content"} on WARREN_CI_EV_FD, in Jupyter's iopub
shapes (ci_python maps them to E2B's lines): "ready" once, then per request
"execute_input", any number of "display_data", at most one "execute_result" or "error"
per cell, and "status" idle last.

Output: sys.stdout and sys.stderr write to descriptors 1 and 2, the pipes the server
reads, where os.write, C code and child processes write too. Python-level writes are
buffered (in gVisor a system call costs 70+ us, so a loop of prints must not be one call
each) and flushed within FLUSH_SECONDS by a flusher thread while a cell runs, when the
other stream is written, and before every event. Order: the server drains both pipes
before it takes the idle status, so a cell's output all comes before its end; and
before a display, result or error the kernel waits (at most SETTLE_SECONDS) until the
server has read everything in the output pipes, so output written after such an event
cannot be read with the output before it and come first.
"""

import array
import builtins
import fcntl
import getpass
import importlib.util
import io
import json
import os
import signal
import stat
import sys
import termios
import threading
import time

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
FLUSH_SECONDS = 0.05
FLUSH_BYTES = 64 << 10
SETTLE_SECONDS = 0.5
# Events written only once the server has read the output pipes (ci_python.drains_first).
SETTLED = ("display_data", "execute_result", "error")

REQ_FD = int(os.environ.pop("WARREN_CI_REQ_FD"))
EV_FD = int(os.environ.pop("WARREN_CI_EV_FD"))
# Child processes (os.system, !cmd) must not hold the pipes: the server sees the kernel's
# end as the end of the events pipe.
os.set_inheritable(REQ_FD, False)
os.set_inheritable(EV_FD, False)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Flusher:
    """Flushes the streams FLUSH_SECONDS after the first write into an empty buffer: output
    streams while a cell runs, and an idle kernel never wakes up."""

    def __init__(self):
        self.streams = []
        self.pending = threading.Event()

    def kick(self):
        self.pending.set()

    def run(self):
        while True:
            self.pending.wait()
            time.sleep(FLUSH_SECONDS)
            self.pending.clear()
            for s in self.streams:
                try:
                    s.flush()
                except Exception:
                    pass


_flusher = _Flusher()


class _Out(io.TextIOBase):
    """A text stream onto a descriptor, buffered in memory and flushed by the flusher,
    when FLUSH_BYTES are pending, and before every event."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, fd, name):
        super().__init__()
        self._fd = fd
        self._name = name
        self._lock = threading.Lock()
        self._parts = []
        self._size = 0
        self.buffer = _Bytes(self)
        self.other = None  # the other stream of the pair (stdout's stderr and back)

    @property
    def name(self):
        return self._name

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        self._add(s.encode("utf-8", "backslashreplace"))
        return len(s)

    def _add(self, data):
        if not data:
            return
        other = self.other
        if other is not None and other._parts:
            # Switching streams: what the other one holds goes first, and is read first.
            other.flush()
            _settle((other._fd,))
        with self._lock:
            self._parts.append(data)
            self._size += len(data)
            first, full = len(self._parts) == 1, self._size >= FLUSH_BYTES
        if full:
            self.flush()
        elif first:
            _flusher.kick()

    def flush(self):
        # Written under the lock: two flushes never interleave their bytes.
        with self._lock:
            if not self._parts:
                return
            data = b"".join(self._parts)
            self._parts, self._size = [], 0
            _write_all(self._fd, data)


class _Bytes:
    """sys.stdout.buffer: bytes into the same buffer as the text."""

    def __init__(self, out):
        self._out = out

    def write(self, data):
        self._out._add(bytes(data))
        return len(data)

    def flush(self):
        self._out.flush()

    def writable(self):
        return True

    def fileno(self):
        return self._out.fileno()


STDOUT = _Out(1, "<stdout>")
STDERR = _Out(2, "<stderr>")
_ev_lock = threading.Lock()


def _jsonable(o):
    return str(o)


def _unread(fd):
    """Bytes written to the pipe fd that the server has not read yet (0 when fd is not a
    pipe: the user may have redirected it)."""
    n = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, n, True)
        if n[0] and not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return 0
    except OSError:
        return 0
    return n[0]


def _settle(fds=(1, 2)):
    """Waits until the server has read everything written to fds (at most
    SETTLE_SECONDS)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    for fd in fds:
        while _unread(fd) and time.monotonic() < deadline:
            time.sleep(0.0002)


def emit(kind, content):
    """Sends an event, after the output written before it."""
    for s in {id(x): x for x in (STDOUT, STDERR, sys.stdout, sys.stderr)}.values():
        try:
            s.flush()
        except Exception:
            pass
    if kind in SETTLED:
        _settle()
    data = (json.dumps({"msg_type": kind, "content": content}, default=_jsonable) + "\n").encode()
    with _ev_lock:
        _write_all(EV_FD, data)


def _no_input(prompt="", *args, **kwargs):
    from IPython.core.error import StdinNotImplementedError

    raise StdinNotImplementedError(
        "input() was called, but the code interpreter has no stdin: pass the data in the code or in a file")


def make_shell():
    """The InteractiveShell of this kernel: events instead of prints for results,
    displays and errors; Jupyter's inline matplotlib and E2B's display formatters."""
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets import Type
    from traitlets.config import Config

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            emit("display_data", {"data": data, "metadata": metadata or {}})

        def clear_output(self, wait=False):
            pass  # E2B's protocol has no clear_output

    class Hook(DisplayHook):
        content = None

        def start_displayhook(self):
            self.content = {"data": {}, "metadata": {}}

        def write_output_prompt(self):
            self.content["execution_count"] = self.prompt_count

        def write_format_data(self, format_dict, md_dict=None):
            self.content["data"], self.content["metadata"] = format_dict, md_dict or {}

        def finish_displayhook(self):
            content, self.content = self.content, None
            if content and content["data"]:
                emit("execute_result", content)

    # Named as ipykernel's shell: libraries decide by this name whether they run under
    # a Jupyter front end (pandas' console width, tqdm, plotly's renderer).
    class ZMQInteractiveShell(InteractiveShell):
        displayhook_class = Type(Hook)
        display_pub_class = Type(Publisher)
        system = InteractiveShell.system_piped

        def _showtraceback(self, etype, evalue, stb):
            emit("error", {"ename": str(etype.__name__), "evalue": str(evalue), "traceback": stb})
            self._last_traceback = stb

        def ask_exit(self):
            pass  # exit() in a cell does not end the kernel (nor does it under Jupyter)

        def enable_gui(self, gui=None):
            pass  # figures are published inline

        def init_virtualenv(self):
            pass

        def init_environment(self):
            # As ipykernel: no pager can work here, and ls may colour.
            os.environ.update(TERM="xterm-color", CLICOLOR="1", PAGER="cat", GIT_PAGER="cat")

    cfg = Config()
    cfg.IPKernelApp = Config()  # "IPKernelApp" in get_ipython().config: a Jupyter kernel
    cfg.InteractiveShell.autoindent = False
    # Every context is its own kernel; a shared history database would only add locking.
    cfg.HistoryManager.enabled = False
    # Figures are published at their real size (figsize * dpi, matplotlib's defaults:
    # 640x480), not cropped to their content.
    cfg.InlineBackend.rc = {}
    cfg.InlineBackend.print_figure_kwargs = {"bbox_inches": None}
    cfg.InlineBackend.figure_formats = {"png"}
    shell = ZMQInteractiveShell.instance(config=cfg)
    # E2B's display formatters (ci_display.py), under a private module name so that the
    # user's sys.path and namespace stay untouched.
    spec = importlib.util.spec_from_file_location("warren_ci_display", os.path.join(LIB_DIR, "ci_display.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["warren_ci_display"] = mod
    shell.extension_manager.load_extension("warren_ci_display")
    return shell


_running = False


def _on_sigint(signum, frame):
    # An interrupt stops a running cell; one that lands between cells is dropped.
    if _running:
        raise KeyboardInterrupt


def run(shell, req):
    global _running
    env = {str(k): str(v) for k, v in (req.get("env") or {}).items()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        emit("execute_input", {"execution_count": shell.execution_count})
        _running = True
        try:
            shell.run_cell(req.get("code") or "", store_history=True)
        finally:
            _running = False
    except KeyboardInterrupt:  # landed outside the cell's own handling
        emit("error", {"ename": "KeyboardInterrupt", "evalue": "", "traceback": ["KeyboardInterrupt"]})
    finally:
        _running = False
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shell.exit_now = False
        emit("status", {"execution_state": "idle"})


def main():
    sys.stdout, sys.stderr = STDOUT, STDERR
    STDOUT.other, STDERR.other = STDERR, STDOUT
    _flusher.streams = [STDOUT, STDERR]
    threading.Thread(target=_flusher.run, name="warren-flush", daemon=True).start()
    signal.signal(signal.SIGINT, _on_sigint)
    # The user's imports resolve from the working directory, not from this directory.
    sys.path[0] = ""
    shell = make_shell()
    # The first result of a kernel ran every display formatter for the first time (lazy
    # imports and first calls: ~25 ms in gVisor, on the first runCode of every sandbox
    # restored from the template's snapshot). Format one value now, before "ready": no
    # output, no history, nothing in the user's namespace.
    shell.display_formatter.format(2)
    builtins.input = _no_input
    getpass.getpass = _no_input
    emit("ready", {})
    reqs = os.fdopen(REQ_FD, "rb")
    while True:
        try:
            line = reqs.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return  # the server closed the pipe: this context is gone
        try:
            req = json.loads(line)
        except ValueError:
            continue
        run(shell, req)


if __name__ == "__main__":
    main()
