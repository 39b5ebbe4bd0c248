"""Readable figure labels (helpers/book/figures.py)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers.book.figures import COLUMN_PX, legible, needed_pt, rendered_pt  # noqa: E402


def test_a_figure_narrower_than_the_column_is_seen_at_its_own_size():
    # 5 in at 100 dpi = 500 px: not shrunk; 10 pt drawn at 100 dpi on a 96-px-per-inch page
    assert rendered_pt(10, 5, 100) == pytest.approx(10 * 100 / 96)


def test_a_wide_figure_is_shrunk_and_its_labels_with_it():
    # 14 in at 100 dpi = 1,400 px shown in 690 px: 10-pt labels are seen at about 5 pt
    assert rendered_pt(10, 14, 100) == pytest.approx(10 * 100 * (COLUMN_PX / 1400) / 96)
    assert rendered_pt(10, 14, 100) < 6
    assert rendered_pt(needed_pt(14, 100), 14, 100) == pytest.approx(8)


def test_legible_raises_small_labels_and_keeps_large_ones():
    fig, ax = plt.subplots(figsize=(14, 3.6), dpi=100)
    ax.set_xlabel("age (years)", fontsize=10)
    title = ax.set_title("a title", fontsize=30)
    legible(fig)
    fig.canvas.draw()
    assert ax.xaxis.label.get_fontsize() == pytest.approx(needed_pt(14, 100))
    assert all(t.get_fontsize() >= needed_pt(14, 100) - 1e-9
               for t in ax.get_xticklabels() if t.get_text())
    assert title.get_fontsize() == 30
    plt.close(fig)


def test_a_narrow_figure_only_gets_labels_below_eight_points_raised():
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.set_xlabel("x", fontsize=6)
    ax.set_ylabel("y", fontsize=9)
    legible(fig)
    assert rendered_pt(ax.xaxis.label.get_fontsize(), 5, 100) == pytest.approx(8)
    assert ax.yaxis.label.get_fontsize() == 9
    plt.close(fig)


def test_every_displayed_figure_passes_through_legible():
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    from helpers.book.figures import use_for_figures

    shell = InteractiveShell.instance()
    png = shell.display_formatter.formatters["image/png"]
    seen = []
    png.for_type(Figure, lambda fig: seen.append(fig.axes[0].xaxis.label.get_fontsize()) or b"")
    use_for_figures(shell)
    use_for_figures(shell)  # a second call does not wrap twice
    fig, ax = plt.subplots(figsize=(14, 3.6), dpi=100)
    ax.set_xlabel("age (years)", fontsize=10)
    png(fig)
    assert seen == [pytest.approx(needed_pt(14, 100))]
    plt.close(fig)
