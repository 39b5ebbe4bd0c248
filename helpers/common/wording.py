"""Words computed from numbers: the comparisons a chapter's prose makes ("lower than",
"overlapping", "3 of 5"), so that a sentence whose truth depends on a result follows it.

Every function takes the numbers and returns the words; none decides what a result means for a
paper's claim (that is the chapter's rule, recorded with :mod:`helpers.book.results`).
"""

from __future__ import annotations

import math


def _finite(*values: float) -> None:
    """Words about a missing number would be made up: refuse NaN and infinity by name."""
    for value in values:
        if not math.isfinite(float(value)):
            raise ValueError(f"cannot word a comparison with {value!r}: not a finite number")


def n_of_m(n: int, m: int) -> str:
    """'all 4', 'none of the 4', '1 of 4' (counts, checked: 0 <= n <= m)."""
    if not 0 <= int(n) <= int(m):
        raise ValueError(f"n_of_m: n = {n} must lie between 0 and m = {m}")
    if m == 0:
        return "none (of 0)"
    if n == m:
        return "both" if m == 2 else f"all {m}"
    if n == 0:
        return "neither" if m == 2 else f"none of the {m}"
    return f"{n} of {m}"


def share_word(n: int, m: int) -> str:
    """How much of a whole a count is, in words: 'all', 'most', 'half', 'a minority', 'none'
    (most: more than half)."""
    if not 0 <= int(n) <= int(m) or m == 0:
        raise ValueError(f"share_word: need 0 <= n = {n} <= m = {m} and m > 0")
    if n == m:
        return "all"
    if n == 0:
        return "none"
    if 2 * n > m:
        return "most"
    return "half" if 2 * n == m else "a minority"


def compared(value: float, other: float, tolerance: float = 0.0) -> str:
    """'lower than', 'higher than' or 'about equal to' (within ``tolerance``, inclusive)."""
    _finite(value, other, tolerance)
    if abs(value - other) <= tolerance:
        return "about equal to"
    return "lower than" if value < other else "higher than"


def intervals_relation(first: tuple[float, float], second: tuple[float, float]) -> str:
    """'overlapping' when two (low, high) intervals share any value, else 'separate'."""
    _finite(*first, *second)
    for low, high in (first, second):
        if low > high:
            raise ValueError(f"interval ({low}, {high}): low above high")
    return "overlapping" if first[0] <= second[1] and second[0] <= first[1] else "separate"


def interval_sign(low: float, high: float) -> str:
    """Where an interval of a difference lies against 0: 'below 0', 'above 0', 'includes 0'."""
    _finite(low, high)
    if low > high:
        raise ValueError(f"interval ({low}, {high}): low above high")
    return "below 0" if high < 0 else "above 0" if low > 0 else "includes 0"


def change_word(before: float, after: float, small: float = 0.1) -> str:
    """How a positive error moves: 'much smaller' (falls by more than ``2 * small`` of
    itself), 'smaller', 'about the same' (within ``small`` of itself), 'larger'."""
    _finite(before, after, small)
    if before <= 0:
        raise ValueError(f"change_word: the value before must be positive, got {before}")
    ratio = (after - before) / before
    if abs(ratio) <= small:
        return "about the same"
    if ratio < -2 * small:
        return "much smaller"
    return "smaller" if ratio < 0 else "larger"


def mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """'mean ± sd' as tables print a summary over folds or splits; the mean alone where the
    sd is not defined (one fold)."""
    if math.isnan(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def too_few(n: int, minimum: int, unit: str) -> str | None:
    """The refusal a statistic on too few units gets ('too few splits (2; at least 5)'), or
    None when there are enough."""
    return f"too few {unit} ({n}; at least {minimum})" if n < minimum else None


def p_text(p: float, n: int, minimum: int, unit: str = "splits") -> str:
    """A p-value as the page prints it, or the refusal when ``n`` is below ``minimum``."""
    refused = too_few(n, minimum, unit)
    if refused:
        return f"not tested: {refused}"
    _finite(p)
    return f"p = {p:.2g}"
