"""The whole book as one PDF, offline: every toc page's article in toc order on one print page,
printed by headless Chromium (the browser check's Debian package; no LaTeX, no download).

``python -m helpers.book.pdf _build/html`` (``make pdf``) writes ``_build/html/print/book.html``
and ``_build/book.pdf``. The print page keeps the site's stylesheets and images and drops its
scripts, so collapsed code stays collapsed and math shows as its TeX source (MathJax comes from
the internet).
"""

from __future__ import annotations

import argparse
import html
import re
import subprocess
import sys
from pathlib import Path

from helpers.book.browser import HEADLESS, chromium_binary
from helpers.book.publish import toc_pages
from helpers.paths import ROOT

ARTICLE = re.compile(r'<article class="bd-article"[^>]*>(.*?)</article>', re.S)
STYLESHEET = re.compile(r"<link\b[^>]*\bstylesheet\b[^>]*>")
PRINT_DIR = "print"  # one level deep, as every page is, so '../_images' resolves the same


def article(page_html: str, where: str) -> str:
    """The content of a rendered page's article; an error names the page when there is none."""
    found = ARTICLE.search(page_html)
    if found is None:
        raise ValueError(f"{where}: no <article class=\"bd-article\"> (not a rendered book page)")
    return found.group(1)


def print_html(site: Path, pages: list[str], title: str = "") -> str:
    """One HTML page holding every page's article in order, each from a new sheet of paper,
    with the first page's stylesheets and no scripts."""
    texts = {page: (site / f"{page}.html").read_text(errors="replace") for page in pages}
    links = STYLESHEET.findall(texts[pages[0]]) if pages else []
    parts = [f'<article class="bd-article" style="display: block; break-before: page">'
             f"{article(text, page)}</article>" for page, text in texts.items()]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>{''.join(links)}</head>\n"
            '<body><div style="display: block; max-width: 50rem; margin: 0 auto">'
            f'{"".join(parts)}</div></body></html>\n')


def write_pdf(site: Path, out: Path, pages: list[str]) -> Path:
    """Write the print page into ``site/print/`` and print it to ``out`` with Chromium."""
    page = site / PRINT_DIR / "book.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(print_html(site, pages, "Aging clocks, rebuilt"))
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium_binary(), *HEADLESS, "--no-pdf-header-footer",
                    f"--print-to-pdf={out.resolve()}",
                    page.resolve().as_uri()],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    if not out.is_file() or out.read_bytes()[:5] != b"%PDF-":
        raise RuntimeError(f"{out}: Chromium wrote no PDF")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: the rendered site in, one PDF of the toc's pages out."""
    parser = argparse.ArgumentParser(prog="python -m helpers.book.pdf",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the rendered html folder")
    parser.add_argument("--out", type=Path, default=None, help="default: SITE/../book.pdf")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"{args.site}: no index.html; build the book first (make html)", file=sys.stderr)
        return 1
    out = write_pdf(args.site, args.out or args.site.parent / "book.pdf",
                    toc_pages(ROOT / "_toc.yml"))
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
