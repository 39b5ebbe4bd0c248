"""Checks a rendered site before it is published (``make publish-check``, which the GitHub
Pages workflow ``.github/workflows/publish.yml`` runs as its build step)::

    python -m helpers.book.publish SITE_FOLDER --profile default

The site must hold a page for every toc entry, say on every page which build it shows (the
banner of :mod:`helpers.book.banner`, naming the expected profile), leak no local absolute path
(the checkout's or the cache's), and carry ``.nojekyll`` so that GitHub Pages serves the
``_static`` folder as it is. Exits non-zero listing every problem.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import yaml

from helpers.book.banner import MEANING
from helpers.book.run import toc_files
from helpers.paths import ROOT

LOCAL_PATHS = (r"/home/[A-Za-z0-9_.-]+/", r"/Users/[A-Za-z0-9_.-]+/", r"/root/", r"/tmp/",
               r"/work/")


def toc_pages(toc_path: Path) -> list[str]:
    """Every document the toc lists (root included), as paths without suffix."""
    doc = yaml.safe_load(Path(toc_path).read_text())
    return [doc["root"], *toc_files({k: v for k, v in doc.items() if k != "root"})]


def site_problems(site: Path, pages: list[str], profile: str,
                  local_roots: tuple[str, ...] = ()) -> list[str]:
    """What keeps ``site`` from being published; empty when it is ready."""
    site = Path(site)
    if not (site / "index.html").is_file():
        return [f"{site}: no index.html; not a rendered book"]
    problems = []
    if not (site / ".nojekyll").is_file():
        problems.append(f"{site}: no .nojekyll (GitHub Pages would drop _static)")
    expected = MEANING.get(profile, f"{profile} profile")
    leaks = re.compile("|".join([*LOCAL_PATHS, *(re.escape(r) for r in local_roots if r)]))
    for page in pages:
        path = site / f"{page}.html"
        if not path.is_file():
            problems.append(f"{path}: the toc lists {page!r} but the page was not rendered")
            continue
        text = path.read_text(errors="replace")
        if "Built from commit" not in text or expected not in text:
            problems.append(f"{path}: the banner does not say it shows the {profile} profile "
                            "of a commit")
        found = sorted(set(m.group(0) for m in leaks.finditer(text)))
        if found:
            problems.append(f"{path}: local absolute path(s) {found[:3]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line: check a site folder, print the problems, exit 1 if there are any."""
    parser = argparse.ArgumentParser(prog="python -m helpers.book.publish",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the rendered html folder")
    parser.add_argument("--profile", default="default")
    args = parser.parse_args(argv)
    cache = os.environ.get("AGING_BOOK_CACHE", "")
    problems = site_problems(args.site, toc_pages(ROOT / "_toc.yml"), args.profile,
                             (str(ROOT), cache))
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{args.site}: {'ready to publish' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
