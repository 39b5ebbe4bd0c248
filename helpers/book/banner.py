"""The line at the top of every rendered page saying which build it shows: the parameter
profile its chapters were executed with, the commit and the date.

A Sphinx extension (listed in ``_config.yml``): when the build starts, it reads the runner's
manifests (``chapters/<name>.manifest.json``) and sets the theme's announcement. A quick-profile
build says on every page that its numbers check the pipeline, not the methods. It also drops
scripts that a page would load twice.
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from helpers.book.run import EXECUTED_DIR, MANIFEST_SUFFIX, read_manifest
from helpers.paths import ROOT

MEANING = {
    "quick": "quick profile: small sizes and short training, so the numbers on these pages "
             "check the pipeline, not the methods; no verdicts are recorded",
    "default": "default profile, the sizes this book is published with",
    "paper": "paper profile, the papers' own scale where a chapter supports it",
}


def executed_profiles(root: Path = ROOT) -> dict[str, list[str]]:
    """Profile -> chapters executed with it, from the runner's manifests."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / EXECUTED_DIR).glob(f"*{MANIFEST_SUFFIX}")):
        chapter = path.name[:-len(MANIFEST_SUFFIX)]
        manifest = read_manifest(chapter, root)
        if manifest is not None:
            found.setdefault(str(manifest.get("profile") or "unknown"), []).append(chapter)
    return found


def commit(root: Path = ROOT) -> str:
    """The short commit hash of ``root`` ('+ local changes' when the tree differs from it),
    or 'an unknown commit' outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True, timeout=20).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "an unknown commit"
    return f"commit {head}" + (" + local changes" if dirty else "")


def banner_text(profiles: dict[str, list[str]], built_from: str, date: str) -> str:
    """The announcement: which profile(s), commit and date this build shows."""
    start = f"Built from {built_from} on {date}"
    if not profiles:
        return f"{start}: no chapter had been executed by the runner."
    if len(profiles) == 1:
        (name,) = profiles
        return f"{start}, {MEANING.get(name, f'{name} profile')}."
    counts = ", ".join(f"{name} ({len(chapters)} chapter{'s' * (len(chapters) != 1)})"
                       for name, chapters in sorted(profiles.items()))
    note = (" Pages executed with the quick profile check the pipeline, not the methods."
            if "quick" in profiles else "")
    return f"{start}, with chapters executed under different profiles: {counts}.{note}"


def set_announcement(app, config) -> None:
    """Sphinx ``config-inited`` hook: put the banner into the theme's announcement."""
    root = Path(app.srcdir)
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    text = banner_text(executed_profiles(root), commit(root), today)
    options = dict(config.html_theme_options or {})
    options["announcement"] = text
    config.html_theme_options = options


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep one copy of each inline or linked script on a page: sphinx-thebe's configuration
    script is added twice under jupyter-book, and its second ``const`` declaration is a
    JavaScript error on every page (found by :mod:`helpers.book.browser`)."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        # an inline script is added once with filename None and once with ''
        key = (str(getattr(script, "filename", script) or ""),
               repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app) -> dict:
    """Register the hooks (Sphinx extension entry point)."""
    app.connect("config-inited", set_announcement)
    # early: html-page-context stops at the first handler that returns a template name
    app.connect("html-page-context", drop_repeated_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
