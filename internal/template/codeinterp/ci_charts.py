"""Chart data from matplotlib figures, published as the `e2b/chart` MIME type.

Loaded into every IPython kernel as an extension (see ipython_kernel_config.py). When a
figure is displayed (plt.show(), the end of a cell, display(fig)), IPython asks every
registered formatter for its representation; this one answers with the figure's data in
the shape E2B's code interpreter gives it, which the SDKs expose as `result.chart`:

  line, scatter: title, x/y label and unit, x/y ticks, tick labels and scale, and one
                 element per line or point set: {label, points: [[x, y], ...]}
  bar:           title, x/y label and unit, elements {label, group, value}
  pie:           title, elements {label, angle (degrees), radius}
  superchart:    a figure with several axes: {title: suptitle, elements: [chart, ...]}
  unknown:       anything else: {type, title, elements: []}

A figure without data gives {} and an extraction that fails gives {} (never an error in
the user's cell), as the reference does. Only the kernel imports this module.
"""

import datetime
import re
import sys
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


def load_ipython_extension(ip):
    """Registers the e2b/chart formatter with the kernel's display formatter."""
    from IPython.core.formatters import BaseFormatter
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

    ip.display_formatter.formatters["e2b/chart"] = ChartFormatter(parent=ip.display_formatter)
