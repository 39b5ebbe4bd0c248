"""The book's table display: a caption that says which data and profile a table shows, numbers
rounded to sensible digits with thousands separators, missing values as a dash, never
clipped (a pandas Styler renders every row and column)."""

from __future__ import annotations

import pandas as pd


def table(frame: pd.DataFrame, caption: str, hide_index: bool = False, digits: int = 2,
          formats: dict | None = None):
    """A captioned, rounded table; ``formats`` gives per-column format strings or functions
    (e.g. ``{"p": "{:.1e}"}``) where the common precision does not suit."""
    styled = frame.style.set_caption(caption).format(precision=digits, thousands=",",
                                                     na_rep="–")
    for column, spec in (formats or {}).items():
        styled = styled.format(spec, subset=[column], na_rep="–")
    return styled.hide(axis="index") if hide_index else styled
