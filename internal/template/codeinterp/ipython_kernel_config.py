# IPython kernel configuration of the Warren code interpreter (loaded with --config).
c = get_config()  # noqa: F821

# Figures are published at their real size (figsize * dpi, matplotlib's defaults: 640x480),
# not cropped to their content.
c.InlineBackend.rc = {}
c.InlineBackend.print_figure_kwargs = {"bbox_inches": None}
c.InlineBackend.figure_formats = {"png"}
# Every context is its own kernel; a shared history database would only add locking.
c.HistoryManager.enabled = False

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
