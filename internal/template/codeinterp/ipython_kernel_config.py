# IPython kernel configuration of the Warren code interpreter (loaded with --config).
c = get_config()  # noqa: F821

# Figures are published at their real size (figsize * dpi, matplotlib's defaults: 640x480),
# not cropped to their content.
c.InlineBackend.rc = {}
c.InlineBackend.print_figure_kwargs = {"bbox_inches": None}
c.InlineBackend.figure_formats = {"png"}
# Every context is its own kernel; a shared history database would only add locking.
c.HistoryManager.enabled = False
# ipykernel sleeps 0.5 ms after each cell so that the shell reply trails the cell's
# output; the server follows iopub to the idle status, which already trails it.
c.IPythonKernel._execute_sleep = 0.0

# ipykernel (6.17) sends everything on iopub from its IOPub thread, in the order it was
# handed over, and OutStream.flush() from the kernel's main thread waits for a round trip
# to that thread even when nothing is buffered. The kernel flushes stdout and stderr
# twice per cell (in the display hook and before the reply), so a cell with no output
# paid four thread round trips: in gVisor 1+1 took 67-73 ms instead of 27-31 ms. A flush
# with nothing pending now returns at once; one with output still waits as before. The
# order on iopub is unchanged: everything still goes through the same thread in order.
#
# Output written to the file descriptors (os.write, C code, os.system) reaches the
# stream through a pipe and a watcher thread. Before deciding that nothing is pending, a
# flush waits (at most 0.2 s) until the watcher has taken everything in the pipe and
# handed it to the stream; the watcher below marks itself busy before it takes bytes, so
# no output is ever between the pipe and the stream unseen. (Without the wait, 2 cells in
# 60 ending in os.write(1, ...) lost their output; ipykernel's own round trip hid that.)
import os as _os  # noqa: E402
import select as _select  # noqa: E402
import sys as _sys  # noqa: E402
import threading as _threading  # noqa: E402
import time as _time  # noqa: E402

import ipykernel.iostream as _iostream  # noqa: E402

_blocking_flush = _iostream.OutStream.flush
_SETTLE_SECONDS = 0.2


def _warren_watch_pipe_fd(self):
    """ipykernel's _watch_pipe_fd, with self._warren_reading set while bytes are on their
    way from the pipe to the stream."""
    try:
        while self._should_watch:
            _select.select([self._fid], [], [])
            self._warren_reading = True
            try:
                bts = _os.read(self._fid, 1000)
                if not bts:
                    return
                self.write(bts.decode())
                _os.write(self._original_stdstream_copy, bts)
            finally:
                self._warren_reading = False
    except Exception:
        self._exc = _sys.exc_info()


def _warren_settle(self):
    """Waits until the pipe is empty and the watcher idle, for at most _SETTLE_SECONDS."""
    fid = getattr(self, "_fid", None)
    if fid is None or not getattr(self, "_should_watch", False):
        return
    deadline = _time.monotonic() + _SETTLE_SECONDS
    while True:
        try:
            waiting = bool(_select.select([fid], [], [], 0)[0])
        except (OSError, ValueError):
            return
        if not waiting and not self._warren_reading:
            return
        if _time.monotonic() >= deadline:
            return
        _time.sleep(0.0005)


def _warren_flush(self):
    pub = self.pub_thread
    other_thread = (pub is not None and pub.thread is not None and pub.thread.is_alive()
                    and pub.thread.ident != _threading.current_thread().ident)
    if other_thread:
        _warren_settle(self)
        if not (self._flush_pending or self._subprocess_flush_pending or self.echo is not None):
            return
    _blocking_flush(self)


_iostream.OutStream._warren_reading = False
_iostream.OutStream._watch_pipe_fd = _warren_watch_pipe_fd
_iostream.OutStream.flush = _warren_flush

# E2B's display formatters (ci_display.py): chart data of matplotlib figures, DataFrame
# columns, dicts and lists as JSON. Loaded from this directory under a private module
# name, so that the user's sys.path and namespace stay untouched.
import importlib.util as _ilu  # noqa: E402
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402

try:
    _dir = _os.path.dirname(_os.path.abspath(__file__))
except NameError:  # the config loader did not say where this file is
    _dir = "/usr/local/lib/warren-code-interpreter"
_spec = _ilu.spec_from_file_location("warren_ci_display", _os.path.join(_dir, "ci_display.py"))
_mod = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
_sys.modules["warren_ci_display"] = _mod
c.InteractiveShellApp.extensions = ["warren_ci_display"]
