"""Opens every rendered page in headless Chromium and fails on what a reader would see broken
(``make browser-check``, run by ``make test``)::

    python -m helpers.book.browser _build/html [--shots FOLDER] [--first-screen PAGE ...]

For each page of the toc it fails on: a table or figure wider than the text column that is
neither scrolled nor fully visible (clipped), an image drawn wider than its column, a JavaScript
error or an exception logged by the page, and a cross-reference or role shown as raw text
(``{doc}`...```). Each failure gets a screenshot in ``--shots`` (default
``_build/browser-check``). It also counts, per page, what the reader-experience review counted
(visible code cells, tables, clipped tables, figures without caption, stderr blocks, bare
glued values, progress bars) and prints the totals. Chromium is Debian's ``chromium``; the
check installs it with ``apt-get`` when it is missing. It speaks the DevTools protocol over a
websocket (tornado, already installed with Jupyter): no browser-driver package is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers.book.publish import LOCAL_PATHS, toc_pages
from helpers.paths import ROOT

# counted on every page and failed on: what a reader should never see
NOISE = {"stderr_blocks": "stderr block(s)", "bare_glue": "bare glued value(s) (a grey box)",
         "progress_bars": "progress bar(s)"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# how every headless Chromium of the book starts (the browser check, the PDF)
HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu")
WIDTH, HEIGHT = 1280, 900

# Runs in the page once it has loaded; returns what the reader would see broken, and counts.
PAGE_PROBE = r"""
(() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const column = article.getBoundingClientRect();
  const visible = el => {
    const s = getComputedStyle(el);
    if (s.display === 'none' || s.visibility === 'hidden') return false;
    for (let p = el; p; p = p.parentElement) {
      if (p.tagName === 'DETAILS' && !p.open && !el.closest('summary')) return false;
      if (getComputedStyle(p).display === 'none') return false;
    }
    return true;
  };
  const overflowBox = el => {
    for (let p = el.parentElement; p && p !== article; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o !== 'visible') return {box: p, scrolls: o === 'auto' || o === 'scroll'};
    }
    return {box: null, scrolls: false};
  };
  // cut: part of the element lies outside what its column shows without scrolling sideways
  // (a scroll bar at the foot of a long table is no help to the reader at its top)
  const cut = el => {
    const {box} = overflowBox(el);
    const r = el.getBoundingClientRect();
    const right = box ? box.getBoundingClientRect().left + box.clientWidth : column.right;
    return Math.max(r.right, r.left + el.scrollWidth) > Math.min(right, column.right) + 1;
  };
  const describe = el => {
    const cap = el.querySelector('caption') || el.closest('figure')?.querySelector('figcaption');
    const text = (cap ? cap.innerText : el.innerText || el.getAttribute('alt') || '').trim();
    return text.slice(0, 80).replace(/\s+/g, ' ');
  };
  const problems = [];
  const counts = {code_cells_visible: 0, tables: 0, tables_clipped: 0, figures: 0,
                  figures_uncaptioned: 0, stderr_blocks: 0, bare_glue: 0, progress_bars: 0};
  document.querySelectorAll('div.cell').forEach(cell => {
    const input = cell.querySelector(':scope > .cell_input');
    if (input && visible(input) && !cell.closest('details')) counts.code_cells_visible += 1;
  });
  let i = 0;
  document.querySelectorAll('article table').forEach(t => {
    if (!visible(t) || t.closest('.highlight') || t.closest('.bd-toc')) return;
    counts.tables += 1;
    if (cut(t)) {
      counts.tables_clipped += 1;
      t.setAttribute('data-check', String(i));
      problems.push({kind: 'clipped table', what: describe(t), id: i++});
    }
  });
  document.querySelectorAll('article img').forEach(img => {
    if (!visible(img) || img.closest('.bd-header') || img.width < 60) return;
    counts.figures += 1;
    const figure = img.closest('figure');
    const caption = figure && figure.querySelector('figcaption');
    if (!caption || !caption.innerText.trim()) counts.figures_uncaptioned += 1;
    if (cut(img)) {
      img.setAttribute('data-check', String(i));
      problems.push({kind: 'figure wider than the column', what: describe(img), id: i++});
    }
  });
  counts.stderr_blocks = document.querySelectorAll('article .output.stderr').length;
  // exercises by kind: the title's words before its first colon (sphinx-exercise's title)
  document.querySelectorAll('article .exercise > .admonition-title').forEach(t => {
    const kind = (t.innerText.match(/\((Pen and paper|Implementation|Interpretation)\b/)
                  || [null, 'other'])[1].toLowerCase().replace(/ /g, '_');
    counts[`exercises_${kind}`] = (counts[`exercises_${kind}`] || 0) + 1;
  });
  document.querySelectorAll('article .cell_output .output.text_plain').forEach(o => {
    if (/\d+%\|/.test(o.innerText) || /it\/s\]/.test(o.innerText)) counts.progress_bars += 1;
  });
  document.querySelectorAll('article .cell_output > .output').forEach(o => {
    const t = o.innerText.trim();
    if (o.classList.contains('text_plain') && /^(np\.[a-z0-9]+\()?[-+]?[\d.,e]+\)?$|^'.*'$/.test(t))
      counts.bare_glue += 1;
  });
  const raw = /\{(doc|ref|numref|term|cite|cite:[a-z]+|glue|glue:[a-z]+|eq|download|math)\}`/g;
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest('pre, code, .highlight')) continue;
    const m = n.textContent.match(raw);
    if (m) {
      n.parentElement.setAttribute('data-check', String(i));
      const what = n.textContent.trim().slice(0, 80);
      problems.push({kind: 'raw cross-reference', what, id: i++});
    }
  }
  return {problems, counts};
})()
"""


@dataclass
class PageReport:
    """What the browser found on one page."""
    page: str
    problems: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    shots: list[str] = field(default_factory=list)


def chromium_binary(install: bool = True) -> str:
    """The Chromium executable; installs Debian's package with apt-get when none is found."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if install and shutil.which("apt-get"):
        print("browser check: installing Debian's chromium package with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "chromium"]):
            subprocess.run(command, check=False, env=env, stdout=subprocess.DEVNULL)
        return chromium_binary(install=False)
    raise SystemExit("browser check: no chromium found (install Debian's 'chromium' package)")


class DevTools:
    """A minimal DevTools-protocol client over one websocket (one page target)."""

    def __init__(self, connection):
        self.connection = connection
        self.next_id = 0
        self.events: list[dict] = []

    async def _receive(self, timeout: float | None = None) -> dict:
        """The next message; events are kept in :attr:`events`."""
        message = await asyncio.wait_for(self.connection.read_message(), timeout)
        if message is None:
            raise RuntimeError("browser check: chromium closed the connection")
        data = json.loads(message)
        if "method" in data:
            self.events.append(data)
        return data

    async def call(self, method: str, **params) -> dict:
        """Send one command and return its result."""
        self.next_id += 1
        ident = self.next_id
        await self.connection.write_message(json.dumps({"id": ident, "method": method,
                                                        "params": params}))
        while True:
            data = await self._receive()
            if data.get("id") == ident:
                if "error" in data:
                    raise RuntimeError(f"browser check: {method}: {data['error']}")
                return data.get("result", {})

    async def wait_for(self, event: str, timeout: float = 30.0) -> None:
        """Wait until the page sends ``event`` (e.g. ``Page.loadEventFired``)."""
        deadline = time.monotonic() + timeout
        while not any(e["method"] == event for e in self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"browser check: no {event} within {timeout:.0f} s")
            await self._receive(left)


def js_errors(events: list[dict]) -> list[str]:
    """JavaScript exceptions and console or log errors among the page's DevTools events."""
    found = []
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append(details.get("exception", {}).get("description")
                         or details.get("text", "exception"))
        elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
            found.append(" ".join(str(a.get("value", a.get("description", "")))
                                  for a in params.get("args", [])))
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            if entry.get("source") == "network" and not entry.get("url", "").startswith("file:"):
                continue  # a resource from the internet (MathJax's CDN): not reachable offline
            found.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
    return [line.splitlines()[0][:200] for line in found]


async def screenshot(tools: DevTools, path: Path, selector: str | None = None) -> None:
    """Save the first screen, or the screen around ``selector``'s element, as PNG."""
    if selector:
        await tools.call("Runtime.evaluate", expression=(
            f"document.querySelector('{selector}')?.scrollIntoView({{block: 'center'}})"))
    else:
        await tools.call("Runtime.evaluate", expression="window.scrollTo(0, 0)")
    shot = await tools.call("Page.captureScreenshot", format="png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


async def check_page(tools: DevTools, site: Path, page: str, shots: Path,
                     first_screen: bool) -> PageReport:
    """Load one page, probe it, and screenshot each failure (and its first screen if asked)."""
    report = PageReport(page)
    tools.events.clear()
    await tools.call("Page.navigate", url=(site / f"{page}.html").resolve().as_uri())
    await tools.wait_for("Page.loadEventFired")
    await asyncio.sleep(0.3)  # the theme's scripts run after load (scrollspy, toggles)
    result = await tools.call("Runtime.evaluate", expression=PAGE_PROBE, returnByValue=True)
    if "exceptionDetails" in result:
        raise RuntimeError(f"browser check: the probe failed on {page}: "
                           f"{result['exceptionDetails'].get('text')}")
    found = result["result"]["value"]
    report.counts = found["counts"]
    name = page.replace("/", "__")
    for problem in found["problems"]:
        shot = shots / f"{name}-{problem['id']}.png"
        await screenshot(tools, shot, f"[data-check=\"{problem['id']}\"]")
        report.problems.append(f"{problem['kind']}: {problem['what']!r}")
        report.shots.append(str(shot))
    for error in js_errors(tools.events):
        report.problems.append(f"JavaScript error: {error}")
    for key, what in NOISE.items():
        if report.counts.get(key):
            report.problems.append(f"{report.counts[key]} {what}")
    html = (site / f"{page}.html").read_text(errors="replace")
    leaks = sorted({m.group(0) for m in re.finditer("|".join(LOCAL_PATHS), html)})
    if leaks:
        report.problems.append(f"local absolute path(s) in the page: {leaks[:3]}")
    if any(p.startswith("JavaScript") for p in report.problems):
        shot = shots / f"{name}-js.png"
        await screenshot(tools, shot)
        report.shots.append(str(shot))
    if first_screen:
        shot = shots / f"{name}-first-screen.png"
        await screenshot(tools, shot)
        report.shots.append(str(shot))
    return report


async def browse(site: Path, pages: list[str], shots: Path,
                 first_screens: set[str]) -> list[PageReport]:
    """Start headless Chromium, check every page in one tab, and close it."""
    from tornado.websocket import websocket_connect

    profile = Path(tempfile.mkdtemp(prefix="book-browser-"))
    process = subprocess.Popen(
        [chromium_binary(), *HEADLESS, "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("browser check: chromium did not start")
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = await asyncio.to_thread(_targets, port)
        page_target = next(t for t in targets if t.get("type") == "page")
        connection = await websocket_connect(page_target["webSocketDebuggerUrl"],
                                             max_message_size=256 * 2**20)
        tools = DevTools(connection)
        for domain in ("Page", "Runtime", "Log"):
            await tools.call(f"{domain}.enable")
        await tools.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                         deviceScaleFactor=1, mobile=False)
        reports = [await check_page(tools, site, page, shots, page in first_screens)
                   for page in pages]
        connection.close()
        return reports
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _targets(port: str) -> list[dict]:
    from urllib.request import urlopen

    with urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        return json.load(response)


def main(argv: list[str] | None = None) -> int:
    """Command line: check every toc page of a rendered site; exit 1 on any problem."""
    parser = argparse.ArgumentParser(prog="python -m helpers.book.browser",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the rendered html folder")
    parser.add_argument("--shots", type=Path, default=None,
                        help="where screenshots of failures go (default SITE/../browser-check)")
    parser.add_argument("--first-screen", nargs="*", default=[],
                        help="pages (e.g. chapters/h1_hallmark_scores) whose first screen is saved")
    parser.add_argument("--counts", type=Path, help="write the per-page counts here (JSON)")
    args = parser.parse_args(argv)
    site = args.site
    if not (site / "index.html").is_file():
        print(f"{site}: no index.html; build the book first (make html)", file=sys.stderr)
        return 1
    shots = args.shots or site.parent / "browser-check"
    shutil.rmtree(shots, ignore_errors=True)
    pages = toc_pages(ROOT / "_toc.yml")
    reports = asyncio.run(browse(site, pages, shots, set(args.first_screen)))
    totals: dict[str, int] = {}
    failures = 0
    for report in reports:
        for key, value in report.counts.items():
            totals[key] = totals.get(key, 0) + value
        for problem in report.problems:
            failures += 1
            print(f"{report.page}: {problem}", file=sys.stderr)
    if args.counts:
        args.counts.write_text(json.dumps({r.page: r.counts for r in reports}, indent=1))
    print("browser check: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in totals.items()))
    if failures:
        print(f"browser check: {failures} problem(s) on {len(pages)} pages; screenshots in "
              f"{shots}", file=sys.stderr)
        return 1
    print(f"browser check: {len(pages)} pages, no problem")
    return 0


if __name__ == "__main__":
    sys.exit(main())
