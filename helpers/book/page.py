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
