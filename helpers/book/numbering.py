"""Figures and exercises numbered per chapter (Figure 1, 2... and Exercise 1, 2, 3 on every
page), as the table helper numbers tables.

A Sphinx extension (listed in ``_config.yml``). Without section numbers Sphinx counts every
numbered kind across the whole book in toc order, so a chapter's first exercise could be
Exercise 31. After Sphinx assigns its numbers, each page's numbers of each kind are replaced
by 1, 2, ... in the same order.
"""

from __future__ import annotations

Numbers = dict[str, dict[str, dict[str, tuple[int, ...]]]]


def per_document(numbers: Numbers) -> tuple[Numbers, list[str]]:
    """Each document's numbers of each kind (figure, exercise...) restarted at 1 in their
    order; returns the new numbers and the documents whose numbers changed."""
    renumbered: Numbers = {}
    changed = []
    for docname, kinds in numbers.items():
        renumbered[docname] = {}
        for kind, ids in kinds.items():
            ordered = sorted(ids, key=lambda key: ids[key])
            renumbered[docname][kind] = {key: (i,) for i, key in enumerate(ordered, 1)}
        if renumbered[docname] != kinds:
            changed.append(docname)
    return renumbered, changed


def _renumber(app, env) -> list[str]:
    """``env-get-updated`` handler, run after Sphinx's own numbering."""
    env.toc_fignumbers, changed = per_document(env.toc_fignumbers)
    return changed


def setup(app):
    app.connect("env-get-updated", _renumber, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
