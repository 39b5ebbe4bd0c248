"""Kernel-side helpers for rendered pages: what a chapter shows instead of raw stderr."""

from __future__ import annotations

import warnings


def collect_warnings(category: type[Warning]) -> list[str]:
    """Route every warning of ``category`` (subclasses included) into the returned list, which
    the page then reports in a sentence, instead of a stderr block naming local source files.
    Other warnings show as before."""
    caught: list[str] = []
    shown = warnings.showwarning

    def show(message, kind, filename, lineno, file=None, line=None):
        if issubclass(kind, category):
            caught.append(str(message))
        else:
            shown(message, kind, filename, lineno, file, line)

    warnings.simplefilter("always", category)
    warnings.showwarning = show
    return caught


def warnings_sentence(caught: list[str], where: str) -> str:
    """The warnings a page collected, as one Markdown sentence with each distinct message once
    (file paths are not part of a warning's message, so none reaches the page)."""
    if not caught:
        return f"**Warnings ({where}):** none was raised while this page ran."
    distinct = list(dict.fromkeys(caught))
    listed = "; ".join(f"“{message}”" + (f" ({caught.count(message)} times)"
                                         if caught.count(message) > 1 else "")
                       for message in distinct)
    return (f"**Warnings ({where}):** {len(caught)} raised while this page ran, "
            f"{len(distinct)} distinct: {listed}.")
