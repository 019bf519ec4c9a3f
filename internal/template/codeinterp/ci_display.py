"""Display formatters of the Warren code interpreter's IPython kernels, as in E2B's
reference interpreter: chart data of matplotlib figures (`e2b/chart`), a DataFrame's
columns (`e2b/data`) and dicts and lists as JSON (`application/json`). The SDKs expose
them as `result.chart`, `result.data` and `result.json`.

Loaded into every kernel as an extension (see ci_kernel.make_shell). When an object
is displayed (a cell's value, display(), plt.show(), the end of a cell with a figure),
IPython asks every registered formatter for its representation.

Charts, in the reference's shape:
  line, scatter: title, x/y label and unit, x/y ticks, tick labels and scale, and one
                 element per line or point set: {label, points: [[x, y], ...]}
  bar:           title, x/y label and unit, elements {label, group, value}
  pie:           title, elements {label, angle (degrees), radius}
  superchart:    a figure with several axes: {title: suptitle, elements: [chart, ...]}
  unknown:       anything else: {type, title, elements: []}
A figure without data gives {} and an extraction that fails gives {} (never an error in
the user's cell), as the reference does. Only the kernel imports this module.
"""

import dataclasses
import datetime
import enum
import math
import re
import sys
import uuid
from decimal import Decimal, localcontext

UNIT = re.compile(r"\s\((.*?)\)|\[(.*?)\]")


def figure_to_chart(fig):
    """The chart dict of a matplotlib Figure ({} when it has no data)."""
    axes = fig.get_axes()
    if not axes or not any(ax.has_data() for ax in axes):
        return {}
    if len(axes) > 1:
        return {"type": "superchart", "title": _suptitle(fig), "elements": [axes_to_chart(ax) for ax in axes]}
    return axes_to_chart(axes[0])


def _suptitle(fig):
    getter = getattr(fig, "get_suptitle", None)  # matplotlib >= 3.8
    if getter is not None:
        return getter()
    st = getattr(fig, "_suptitle", None)
    return st.get_text() if st is not None else ""


def _artists(ax):
    """What was drawn on the axes (lines, collections, patches...), without texts."""
    from matplotlib.text import Text

    children = getattr(ax, "_children", None)
    if children is None:  # older matplotlib keeps them apart
        children = list(ax.lines) + list(ax.collections) + list(ax.patches) + list(ax.images)
    return [a for a in children if not isinstance(a, Text)]


def is_grid_line(line):
    """A two-point horizontal or vertical line (axhline, axvline, a hand-drawn grid)."""
    x, y = line.get_xdata(), line.get_ydata()
    if len(x) != 2 or len(y) != 2:
        return False
    return bool(x[0] == x[1] or y[0] == y[1])


def chart_type(ax):
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle, Wedge

    objs = _artists(ax)
    if all(isinstance(o, Line2D) for o in objs):
        return "line"
    objs = [o for o in objs if not (isinstance(o, Line2D) and is_grid_line(o))]
    for kind, cls in (("scatter", PathCollection), ("pie", Wedge), ("bar", Rectangle)):
        if all(isinstance(o, cls) for o in objs):
            return kind
    return "unknown"


def axes_to_chart(ax):
    kind = chart_type(ax)
    chart = {"type": kind, "title": ax.get_title() or None, "elements": []}
    if kind in ("line", "scatter", "bar"):
        _labels(chart, ax)
    if kind in ("line", "scatter"):
        _ticks(chart, ax)
    if kind == "line":
        for line in ax.get_lines():
            if is_grid_line(line):
                continue
            label = line.get_label()
            if label.startswith("_child"):
                label = "Line %d" % int(label[6:])
            chart["elements"].append({"label": label, "points": _points(zip(line.get_xdata(), line.get_ydata()))})
    elif kind == "scatter":
        for coll in ax.collections:
            chart["elements"].append({"label": coll.get_label(), "points": _points(coll.get_offsets())})
    elif kind == "bar":
        _bars(chart, ax)
    elif kind == "pie":
        for wedge in ax.patches:
            angle = abs(_round(Decimal(float(wedge.theta2)) - Decimal(float(wedge.theta1))))
            chart["elements"].append({"label": wedge.get_label(), "angle": float(angle), "radius": float(wedge.r)})
    return chart


def _labels(chart, ax):
    for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
        chart[axis + "_label"] = label or None
        m = UNIT.search(label) if label else None
        chart[axis + "_unit"] = (m.group(1) or m.group(2)) if m else None


def _converter(axis):
    getter = getattr(axis, "get_converter", None)  # matplotlib >= 3.10
    return getter() if getter is not None else getattr(axis, "converter", None)


def _is_date(conv):
    return conv is not None and type(conv).__module__ == "matplotlib.dates"


def _ticks(chart, ax):
    import matplotlib.dates

    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        conv = _converter(axis)
        labels = [t.get_text() for t in axis.get_ticklabels()]
        raw = list(axis.get_ticklocs())
        if _is_date(conv):
            ticks = [matplotlib.dates.num2date(t).isoformat() for t in raw]
        elif raw and _is_number(raw[0]):
            ticks = [float(t) for t in raw]
        else:
            ticks = raw
        chart[name + "_ticks"] = ticks
        chart[name + "_tick_labels"] = labels
        chart[name + "_scale"] = _scale(conv, axis.get_scale(), ticks, labels)


def _scale(conv, scale, ticks, labels):
    """datetime for dates, the axis' own scale unless linear, and categorical when the
    ticks are 0..n-1 with labels other than their numbers (matplotlib's category axis)."""
    if _is_date(conv):
        return "datetime"
    if scale != "linear":
        return scale
    for i, (tick, label) in enumerate(zip(ticks, labels)):
        if not (_is_number(tick) and tick == i and str(i) != label):
            return "linear"
    return "categorical"


def _bars(chart, ax):
    for container in ax.containers:
        group = container.get_label()
        if group.startswith("_container"):
            group = "Group %d" % int(group[10:])
        heights = [r.get_height() for r in container]
        if all(h == heights[0] for h in heights):
            # Equal heights: horizontal bars (barh), whose categories are on the y axis.
            chart["x_label"], chart["y_label"] = chart["y_label"], chart["x_label"]
            chart["x_unit"], chart["y_unit"] = chart["y_unit"], chart["x_unit"]
            labels = [t.get_text() for t in ax.get_yticklabels()]
            values = [r.get_width() for r in container]
        else:
            labels = [t.get_text() for t in ax.get_xticklabels()]
            values = heights
        for label, value in zip(labels, values):
            chart["elements"].append({"label": label, "group": group, "value": float(value)})


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) or type(v).__module__ == "numpy" and hasattr(v, "real")


def _points(pairs):
    return [[_value(x), _value(y)] for x, y in pairs]


def _value(v):
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(v, numpy.datetime64):
        return str(v.astype("datetime64[s]"))
    if isinstance(v, str):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def _round(d):
    """Rounds to 8 significant digits (so 360/3 gives 120.0, not 119.99999999999999)."""
    with localcontext() as ctx:
        ctx.prec = max(1, 8 - d.adjusted())
        return +d


def jsonable(obj):
    """obj as plain JSON values, the way the reference's orjson call (numpy and non-str
    keys allowed) turns it: numpy arrays and scalars, dates (ISO), enums, UUIDs and
    dataclasses convert; keys become strings; NaN and infinities become null (orjson's
    choice, and what keeps the result lines valid JSON). Anything else raises TypeError.
    """
    numpy = sys.modules.get("numpy")
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        if not -(1 << 63) <= obj < (1 << 64):
            raise TypeError("integer exceeds 64-bit range")
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {_key(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if numpy is not None:
        if isinstance(obj, numpy.ndarray):
            return jsonable(obj.tolist())
        if isinstance(obj, numpy.datetime64):
            return str(obj)
        if isinstance(obj, numpy.generic):
            return jsonable(obj.item())
    raise TypeError("%s is not JSON serializable" % type(obj).__name__)


def _key(k):
    """A dict key as orjson's OPT_NON_STR_KEYS writes it."""
    if isinstance(k, str):
        return k
    if k is None:
        return "null"
    if isinstance(k, bool):
        return "true" if k else "false"
    if isinstance(k, enum.Enum):
        return _key(k.value)
    if isinstance(k, (datetime.date, datetime.time)):
        return k.isoformat()
    if isinstance(k, (int, float, uuid.UUID)):
        return str(k)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(k, numpy.generic):
        return _key(k.item())
    raise TypeError("dict key of type %s" % type(k).__name__)


def dataframe_data(df):
    """A DataFrame's columns as lists (the reference's e2b/data), timestamps in ISO."""
    pandas = sys.modules["pandas"]
    out = {}
    for col, values in df.to_dict(orient="list").items():
        out[col] = [v.isoformat() if isinstance(v, pandas.Timestamp) else v for v in values]
    return jsonable(out)


def load_ipython_extension(ip):
    """Registers the e2b/chart, e2b/data and application/json formatters."""
    from IPython.core.formatters import BaseFormatter, JSONFormatter
    from traitlets import ObjectName, Unicode

    class ChartFormatter(BaseFormatter):
        format_type = Unicode("e2b/chart")
        print_method = ObjectName("_repr_e2b_chart_")
        _return_type = (dict, str)

        def __call__(self, obj):
            # A Figure can only exist if matplotlib was imported: do not import it here.
            if "matplotlib" not in sys.modules:
                return super().__call__(obj)
            from matplotlib.figure import Figure

            if not isinstance(obj, Figure):
                return super().__call__(obj)
            try:
                return figure_to_chart(obj)
            except Exception:
                return {}

    class DataFormatter(BaseFormatter):
        format_type = Unicode("e2b/data")
        print_method = ObjectName("_repr_e2b_data_")
        _return_type = (dict, str)

        def __call__(self, obj):
            pandas = sys.modules.get("pandas")  # as above: no import for other objects
            if pandas is None or not isinstance(obj, pandas.DataFrame):
                return super().__call__(obj)
            try:
                return dataframe_data(obj)
            except Exception:
                return super().__call__(obj)

    class DictJSONFormatter(JSONFormatter):
        def __call__(self, obj):
            if isinstance(obj, (list, dict)):
                try:
                    return jsonable(obj), {"expanded": True}
                except (TypeError, ValueError, RecursionError):
                    pass
            return super().__call__(obj)

    f = ip.display_formatter
    f.formatters["e2b/chart"] = ChartFormatter(parent=f)
    f.formatters["e2b/data"] = DataFormatter(parent=f)
    f.formatters["application/json"] = DictJSONFormatter(parent=f)
