"""The book's one table display: a numbered caption that says which data and profile a table
shows, no meaningless index, integers as integers, three significant figures, human column
names, missing values as a dash; never clipped (the page's style sheet wraps long cells).

Chapters call :func:`table`, and :func:`use_for_dataframes` routes every bare DataFrame a
cell displays through the same rules, so no table reaches the page in pandas' raw form.
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np
import pandas as pd

# Tables shown so far in this kernel: one chapter per kernel, so this numbers them per chapter.
_COUNTER = {"shown": 0}
_DEFAULTS = {"data": "", "profile": ""}


def significant(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, without exponent between 0.001 and 10^digits
    (larger numbers are rounded to whole numbers with thousands separators)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    size = abs(float(f"{value:.{digits}g}"))
    if size >= 10 ** digits:
        return f"{round(value):,}"
    if size < 1e-3:
        return f"{value:.{digits - 1}e}"
    decimals = max(digits - 1 - math.floor(math.log10(size)), 0)
    return f"{value:,.{decimals}f}"


# Headers whose values are years: age errors (MAE, RMSE, MdAE, MAD and what is derived from
# them: "MAE difference", "MAE (ours)") and ages themselves ("age", "age min", "mean age").
IN_YEARS = re.compile(r"^(?:(?:mean|median) )?(?:MAE|RMSE|MdAE|MAD)(?:\b.*)?$"
                      r"|^(?:(?:mean|median|chronological|predicted|exact) )*age"
                      r"(?: (?:min|max|mean|median|range))?$")


def human(name) -> str:
    """A column or index name as a reader would write it: underscores as spaces, and the unit
    of an age or an age error, years, when the name does not give it."""
    if not isinstance(name, str):
        return name
    name = name.replace("_", " ")
    if not IN_YEARS.match(name) or re.search(r"\byears?\b", name):
        return name
    return f"{name[:-1]}, years)" if name.endswith(")") else f"{name} (years)"


def _is_meaningless(index: pd.Index) -> bool:
    """A default 0..n-1 index, or a positional one left by filtering, carries no information."""
    return index.name is None and index.nlevels == 1 and pd.api.types.is_integer_dtype(index)


def _lift_constant(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, str]:
    """Move a column holding one value for every row (e.g. ``data``) into the caption."""
    if column in frame.columns and frame[column].nunique(dropna=False) == 1 and len(frame):
        return frame.drop(columns=column), str(frame[column].iloc[0])
    return frame, ""


def caption_text(caption: str, data: str = "", profile: str = "") -> str:
    """``Table N. caption (data; profile profile).``, numbering tables in display order."""
    _COUNTER["shown"] += 1
    caption = (caption or "").strip()
    said = caption.lower()
    if re.search(r"\b(real|simulated)\b", said):
        data = ""  # the caption names its data already
    if profile and "profile" in said and (profile in said or "every profile" in said):
        profile = ""
    where = "; ".join(part for part in (data, f"{profile} profile" if profile else "") if part)
    if where and where.lower() not in said:
        caption = (f"{caption.rstrip('.')} ({where})." if caption
                   else f"{where[0].upper()}{where[1:]}.")
    return f"Table {_COUNTER['shown']}. {caption}".strip()


def table(frame: pd.DataFrame | pd.Series, caption: str = "", hide_index: bool | None = None,
          digits: int = 3, formats: dict | None = None, data: str | None = None,
          profile: str | None = None):
    """A numbered, captioned table. ``formats`` gives per-column format strings or functions
    (e.g. ``{"p": "{:.1e}"}``) where three significant figures do not suit; ``data`` and
    ``profile`` (defaults: the chapter's, see :func:`use_for_dataframes`) join the caption, as
    does a ``data`` column that holds one value; ``hide_index`` defaults to hiding a
    positional index."""
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    frame, lifted = _lift_constant(frame, "data")
    data = lifted or (data if data is not None else _DEFAULTS["data"])
    profile = profile if profile is not None else _DEFAULTS["profile"]
    if hide_index is None:
        hide_index = _is_meaningless(frame.index)
    if not frame.columns.is_unique:
        raise ValueError(f"table {caption!r}: repeated column names "
                         f"{sorted(set(frame.columns[frame.columns.duplicated()]))}")
    styled = frame.style.set_caption(caption_text(caption, data, profile))
    styled = styled.format(lambda v: significant(v, digits), na_rep="–")
    for column, spec in (formats or {}).items():
        styled = styled.format(spec, subset=[column], na_rep="–")
    styled = styled.format_index(human, axis="columns").format_index(human, axis="index")
    styled = styled.set_table_attributes('class="book-table"')
    return styled.hide(axis="index") if hide_index else styled


def use_for_dataframes(data: str, profile: str, shell=None) -> None:
    """Show every DataFrame or Series a cell returns through :func:`table`, with ``data`` and
    ``profile`` as the chapter's defaults; its caption is ``frame.attrs["caption"]`` if set."""
    _DEFAULTS.update(data=data, profile=profile)
    _COUNTER["shown"] = 0
    if shell is None:
        from IPython import get_ipython
        shell = get_ipython()
    if shell is None:
        return
    html = shell.display_formatter.formatters["text/html"]

    def render(frame):
        return table(frame, frame.attrs.get("caption", "")).to_html()

    html.for_type(pd.DataFrame, render)
    html.for_type(pd.Series, render)
