# IPython kernel configuration of the Warren code interpreter (loaded with --config).
c = get_config()  # noqa: F821

# Figures are published at their real size (figsize * dpi, matplotlib's defaults: 640x480),
# not cropped to their content.
c.InlineBackend.rc = {}
c.InlineBackend.print_figure_kwargs = {"bbox_inches": None}
c.InlineBackend.figure_formats = {"png"}
# Every context is its own kernel; a shared history database would only add locking.
c.HistoryManager.enabled = False
