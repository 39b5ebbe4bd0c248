"""Figures whose labels stay readable on the page: at least 8 pt as the reader sees them.

A figure wider than the text column is shrunk to fit it, and its labels shrink with it: a
14-inch figure with matplotlib's 10-pt labels shows them at about 5 pt. ``use_for_figures``
(called in each chapter's set-up cell) makes every figure a cell shows or glues pass through
:func:`legible` first, which raises each text to the size that renders at ``MIN_PT`` after
that shrinking, and lays the figure out again.
"""

from __future__ import annotations

import warnings

# The text column of a rendered page at the browser check's 1280-px window (CSS px), and the
# smallest text size a reader should see (pt; 96 CSS px per inch, 72 pt per inch).
COLUMN_PX = 690
MIN_PT = 8.0


def page_scale(width_in: float, dpi: float, column_px: float = COLUMN_PX) -> float:
    """How much the page shrinks a figure ``width_in`` inches wide saved at ``dpi``: 1 when it
    fits the column. CSS draws an image at one CSS px per image pixel until it is too wide."""
    return min(1.0, column_px / (width_in * dpi))


def rendered_pt(font_pt: float, width_in: float, dpi: float,
                column_px: float = COLUMN_PX) -> float:
    """The size, in pt of the page, at which a ``font_pt`` label of the figure is seen."""
    return font_pt * (dpi / 72) * page_scale(width_in, dpi, column_px) * (72 / 96)


def needed_pt(width_in: float, dpi: float, min_pt: float = MIN_PT,
              column_px: float = COLUMN_PX) -> float:
    """The font size a label needs in the figure to be seen at ``min_pt`` on the page."""
    return min_pt / rendered_pt(1.0, width_in, dpi, column_px)


def legible(fig, min_pt: float = MIN_PT, column_px: float = COLUMN_PX):
    """Raise every visible text of ``fig`` smaller than :func:`needed_pt` to that size and lay
    the figure out again; returns the figure."""
    from matplotlib.text import Text

    width_in = fig.get_size_inches()[0]
    needed = needed_pt(width_in, fig.dpi, min_pt, column_px)
    raised = False
    fig.canvas.draw()  # tick labels exist only once the figure is drawn
    for ax in fig.axes:  # tick labels are redrawn from their axis' settings, so set those
        for axis in (ax.xaxis, ax.yaxis):
            for which in ("major", "minor"):
                labels = axis.get_ticklabels(minor=which == "minor")
                if any(t.get_text() and t.get_fontsize() < needed for t in labels):
                    axis.set_tick_params(which=which, labelsize=needed)
                    raised = True
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text() and text.get_fontsize() < needed:
            text.set_fontsize(needed)
            raised = True
    if raised and fig.get_layout_engine() is None:
        with warnings.catch_warnings():  # a layout the engine cannot improve stays as it is
            warnings.simplefilter("ignore")
            fig.tight_layout()
    return fig


def use_for_figures(shell=None, min_pt: float = MIN_PT) -> None:
    """Every matplotlib figure the kernel displays (``plt.show``, a figure a cell returns, a
    glued figure) goes through :func:`legible` before matplotlib's own PNG formatter."""
    if shell is None:
        from IPython import get_ipython
        shell = get_ipython()
    if shell is None:
        return
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # pyplot loads its backend at the first figure; the inline backend registers its PNG
    # formatter then, over any set before. Loading it now puts that formatter in place first.
    plt.switch_backend(matplotlib.get_backend())

    png = shell.display_formatter.formatters["image/png"]
    try:
        inner = png.lookup_by_type(Figure)
    except KeyError:  # the inline backend is not active: nothing displays figures as PNG
        return
    if getattr(inner, "is_legible", False):
        return

    def render(fig):
        return inner(legible(fig, min_pt))

    render.is_legible = True
    png.for_type(Figure, render)
