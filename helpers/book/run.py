"""The chapter runner: execute the book's chapters with papermill under a parameter profile.

``python -m helpers.book.run --profile quick`` executes every chapter listed in ``_toc.yml`` (in its
order) from ``notebooks/<name>.md`` into ``chapters/<name>.ipynb``; ``--chapter NAME -p KEY
VALUE`` reruns one chapter with papermill-style overrides. Exits non-zero naming the failing
chapter and cell.

With ``--jobs N`` the toc's parts run side by side, N at a time: the chapters of one part stay in
order (a later chapter may reuse what an earlier one cached, e.g. the trained clock), and the
Appendix part, which reads every other chapter's results, runs after all of them. Each kernel
gets the cores divided by the parts running when it starts (:func:`kernel_threads`): one
thread each while two parts run on two cores, both cores for a chapter that starts alone.

Runs are incremental: after a chapter succeeds, a manifest beside its executed notebook
(``chapters/<name>.manifest.json``) records the digest of everything its outputs depend on
(:func:`chapter_inputs`: its source, effective parameters, the ``helpers`` code, the lock files,
the ``data/`` folder and the recorded results of the chapters it may read). A later run skips a
chapter whose digest is unchanged ("cached" in the summary); ``--force`` reruns everything.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from helpers.paths import ROOT

EXECUTED_DIR = "chapters"
AFTER_ALL = "Appendix"  # toc parts whose caption starts with this run after every other part
SOURCE_DIR = "notebooks"
PROFILES_DIR = Path(SOURCE_DIR) / "profiles"
MANIFEST_SUFFIX = ".manifest.json"
RESULTS_SUBDIR = "results"  # chapters/results/<chapter>/: what helpers.book.results records
# what every chapter's outputs depend on besides its own source and parameters
CODE_DIRS = ("helpers",)
LOCK_FILES = ("requirements/lock.txt", "requirements/constraints.txt", "pyproject.toml")
DATA_DIRS = ("data",)


class ChapterError(RuntimeError):
    """A chapter failed to execute; names the chapter and, when known, the cell."""

    def __init__(self, chapter: str, message: str):
        super().__init__(f"chapter {chapter!r}: {message}")
        self.chapter = chapter


@dataclass
class ChapterResult:
    """Outcome of one chapter: status, wall time in seconds and the error message if any."""

    chapter: str
    ok: bool
    seconds: float
    message: str = ""
    cached: bool = False
    peak_mib: float | None = None

    @property
    def status(self) -> str:
        """``cached``, ``ok`` or ``FAILED``."""
        return "cached" if self.cached else "ok" if self.ok else "FAILED"


def chapters_from_toc(toc_path: Path) -> list[str]:
    """Names of the executed chapters the toc lists (``chapters/<name>``), in toc order."""
    return _chapters_in(yaml.safe_load(Path(toc_path).read_text()))


def toc_parts(toc_path: Path) -> list[tuple[str, list[str]]]:
    """The toc's parts as (caption, executed chapters in order); chapters outside any part
    form one part with an empty caption."""
    doc = yaml.safe_load(Path(toc_path).read_text())
    parts = [(part.get("caption") or "", _chapters_in(part)) for part in doc.get("parts") or []]
    loose = _chapters_in({"chapters": doc.get("chapters") or []})
    return [p for p in ([("", loose)] if loose else []) + parts if p[1]]


def toc_files(node) -> list[str]:
    """Every ``file`` entry under a toc node, in order."""
    found: list[str] = []

    def walk(item) -> None:
        if isinstance(item, dict):
            if isinstance(item.get("file"), str):
                found.append(item["file"])
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for element in item:
                walk(element)

    walk(node)
    return found


def _chapters_in(node) -> list[str]:
    return [Path(f).stem for f in toc_files(node) if f.startswith(f"{EXECUTED_DIR}/")]


def run_groups(chapters: list[str], parts: list[tuple[str, list[str]]]
               ) -> tuple[list[list[str]], list[str]]:
    """The requested chapters grouped for a parallel run: one ordered group per toc part (parts
    with more chapters first, ties in toc order), and the chapters of the Appendix parts, to
    run after all groups."""
    wanted = set(chapters)
    groups = [[c for c in names if c in wanted] for caption, names in parts
              if not caption.startswith(AFTER_ALL)]
    last = [c for caption, names in parts if caption.startswith(AFTER_ALL)
            for c in names if c in wanted]
    grouped = {c for group in groups for c in group} | set(last)
    groups = [g for g in groups if g] + [[c] for c in chapters if c not in grouped]
    # the longest parts first (chapter count estimates the time): a long part started last
    # would leave the other workers idle while it runs alone
    return sorted(groups, key=len, reverse=True), last


def load_profile(name: str, root: Path = ROOT) -> dict:
    """A named parameter profile: ``{"all": {...}, "chapters": {chapter: {...}}}``."""
    path = root / PROFILES_DIR / f"{name}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / PROFILES_DIR).glob("*.yml"))
        raise FileNotFoundError(f"no parameter profile {name!r} ({path}); known: {known}")
    doc = yaml.safe_load(path.read_text()) or {}
    return {"all": doc.get("all") or {}, "chapters": doc.get("chapters") or {}}


def declared_parameters(notebook) -> dict:
    """Names and default values assigned in the notebook's ``parameters`` cell."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            declared = {}
            for node in tree.body:
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if isinstance(target, ast.Name) and node.value is not None:
                            declared[target.id] = _literal_or_source(node.value)
            return declared
    return {}


def _literal_or_source(node: ast.expr):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def chapter_parameters(chapter: str, declared: dict, profile: dict, overrides: dict) -> dict:
    """Profile values the chapter declares, then its own profile block, then overrides."""
    params = {k: v for k, v in profile["all"].items() if k in declared}
    specific = {**(profile["chapters"].get(chapter) or {}), **overrides}
    unknown = sorted(set(specific) - set(declared))
    if unknown:
        raise ChapterError(chapter, f"has no parameter(s) {unknown}; it declares "
                                    f"{sorted(declared)}")
    return {**params, **specific}


def parse_overrides(pairs: list[list[str]] | None) -> dict:
    """Papermill-style ``-p KEY VALUE`` pairs, values read as YAML (5 -> int, true -> bool)."""
    return {key: yaml.safe_load(value) for key, value in (pairs or [])}


PEAK_MEMORY_TAG = "runner-peak-memory"
PEAK_MEMORY_CELL = ("import resource\n"
                    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux")


def execute_chapter(notebook, source: Path, output: Path, parameters: dict, cwd: Path,
                    threads: int | None = None) -> float | None:
    """Execute one chapter (read from ``source``) with papermill; errors name the failing cell.
    ``threads`` (if given) caps the kernel's compute threads (:func:`kernel_threads`).
    Returns the kernel's peak resident memory in MiB (read by a last cell the runner appends
    and removes from the executed notebook), or None where it cannot be read."""
    import copy

    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    chapter = source.stem
    output.parent.mkdir(parents=True, exist_ok=True)
    measured = copy.deepcopy(notebook)
    measured.cells.append(nbformat.v4.new_code_cell(
        PEAK_MEMORY_CELL, metadata={"tags": [PEAK_MEMORY_TAG, "remove-cell"]}))
    try:
        papermill.execute_notebook(
            measured, str(output), parameters=parameters, kernel_name="python3",
            cwd=str(cwd), progress_bar=False, log_output=False,
            **({} if threads is None else {"kernel_manager_class": kernel_manager(threads)}),
        )
    except PapermillExecutionError as err:
        number, first_line = source_code_cell(notebook, err.source)
        raise ChapterError(chapter, f"code cell {number} of {source} (starting {first_line!r}) "
                                    f"raised {err.ename}: {err.evalue}; the executed notebook "
                                    f"with the traceback is {output}") from err
    return pop_peak_memory(output)


def pop_peak_memory(output: Path) -> float | None:
    """Remove the runner's memory cell from an executed notebook; its reading in MiB."""
    import nbformat

    executed = nbformat.read(output, as_version=4)
    cells = [c for c in executed.cells if PEAK_MEMORY_TAG in c.metadata.get("tags", [])]
    if not cells:
        return None
    executed.cells = [c for c in executed.cells if c not in cells]
    nbformat.write(executed, output)
    text = "".join(o.get("text", "") for o in cells[-1].get("outputs", []))
    try:
        return int(text.split()[-1]) / 1024
    except (IndexError, ValueError):
        return None


def source_code_cell(notebook, failed_source: str) -> tuple[int, str]:
    """Number (1-based, among the chapter's code cells) and first line of the failed cell."""
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    number = next((i for i, src in enumerate(code, 1) if src.strip() == failed_source.strip()), 0)
    lines = failed_source.strip().splitlines() or [""]
    return number, lines[0][:60]


# --- incremental runs ---------------------------------------------------------------------

def digest_files(paths: list[Path], root: Path) -> str:
    """sha256 over the relative names and bytes of ``paths`` (sorted; compiled files and
    caches skipped): a change, addition, removal or rename of any file changes it."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def digest_tree(root: Path, names: tuple[str, ...]) -> str:
    """:func:`digest_files` over every file under the folders or files ``names``."""
    paths = []
    for name in names:
        path = root / name
        paths += [path] if path.is_file() else list(path.rglob("*")) if path.is_dir() else []
    return digest_files(paths, root)


def upstream_chapters(chapter: str, parts: list[tuple[str, list[str]]]) -> list[str]:
    """The chapters whose recorded results ``chapter`` may read: the earlier chapters of its
    toc part (a later chapter may load what an earlier one saved, e.g. the trained clock), or
    for an Appendix chapter every chapter outside the Appendix."""
    for caption, names in parts:
        if chapter in names:
            if caption.startswith(AFTER_ALL):
                return [c for cap, ns in parts if not cap.startswith(AFTER_ALL) for c in ns]
            return names[:names.index(chapter)]
    return []


def chapter_inputs(chapter: str, params: dict, root: Path,
                   parts: list[tuple[str, list[str]]]) -> dict:
    """Digests of everything a chapter's outputs depend on. Results of upstream chapters
    enter by content, so an upstream rerun that records the same results (a prose edit) does
    not invalidate this chapter."""
    results = root / EXECUTED_DIR / RESULTS_SUBDIR
    return {
        "source": digest_files([root / SOURCE_DIR / f"{chapter}.md"], root),
        "parameters": json.dumps(params, sort_keys=True, default=str),
        "helpers": digest_tree(root, CODE_DIRS),
        "lock": digest_tree(root, LOCK_FILES),
        "data": digest_tree(root, DATA_DIRS),
        "upstream": {c: digest_tree(results, (c,)) for c in upstream_chapters(chapter, parts)},
    }


def inputs_key(inputs: dict) -> str:
    """One digest of :func:`chapter_inputs`."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def manifest_path(chapter: str, root: Path) -> Path:
    """``chapters/<chapter>.manifest.json``, beside the executed notebook."""
    return root / EXECUTED_DIR / f"{chapter}{MANIFEST_SUFFIX}"


def read_manifest(chapter: str, root: Path) -> dict | None:
    """The chapter's last successful run, or None (none yet, or unreadable)."""
    try:
        return json.loads(manifest_path(chapter, root).read_text())
    except (OSError, ValueError):
        return None


def is_current(chapter: str, inputs: dict, root: Path) -> bool:
    """True when the executed notebook exists and its manifest records the same inputs."""
    manifest = read_manifest(chapter, root)
    notebook = root / EXECUTED_DIR / f"{chapter}.ipynb"
    return (manifest is not None and notebook.is_file()
            and manifest.get("key") == inputs_key(inputs))


def write_manifest(chapter: str, inputs: dict, profile_name: str, seconds: float,
                   root: Path, peak_mib: float | None = None) -> Path:
    """Record a successful run (written to a temporary file, then renamed into place)."""
    path = manifest_path(chapter, root)
    record = {"chapter": chapter, "profile": profile_name, "key": inputs_key(inputs),
              "inputs": inputs, "seconds": round(seconds, 1),
              "peak_mib": None if peak_mib is None else round(peak_mib),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(record, indent=1))
    partial.replace(path)
    return path


def run_chapters(chapters: list[str], profile_name: str, overrides: dict,
                 root: Path = ROOT, out=None, jobs: int = 1,
                 force: bool = False) -> list[ChapterResult]:
    """Execute the chapters, printing a line and wall time for each: in order, or with
    ``jobs`` > 1 one toc part per worker (see the module docstring); a chapter whose inputs
    match its manifest is skipped unless ``force``. Results in input order."""
    out = out or sys.stdout
    profile = load_profile(profile_name, root)
    lock = threading.Lock()
    position = {chapter: i for i, chapter in enumerate(chapters, start=1)}
    parts = toc_parts(root / "_toc.yml")

    def run(chapter: str, threads: int | None = None) -> ChapterResult:
        with lock:
            cap = "" if threads is None else f", {threads} thread{'s' * (threads != 1)}"
            print(f"[{position[chapter]}/{len(chapters)}] {chapter} (profile {profile_name}"
                  f"{cap}) ...", file=out, flush=True)
        result = run_chapter(chapter, profile, overrides, root, profile_name, parts, force,
                             threads)
        with lock:
            memory = "" if result.peak_mib is None else f", peak {result.peak_mib:,.0f} MiB"
            status = {"ok": f"ok in {result.seconds:.1f} s{memory}", "cached": "cached (inputs "
                      "unchanged since its last run)"}.get(result.status,
                                                          f"FAILED: {result.message}")
            print(f"    {chapter}: {status}", file=out, flush=True)
        return result

    if jobs <= 1 or len(chapters) <= 1:
        return [run(chapter) for chapter in chapters]
    groups, last = run_groups(chapters, parts)
    waiting = [len(groups)]  # groups not yet finished

    def run_group(group: list[str]) -> list[ChapterResult]:
        results = []
        for chapter in group:
            with lock:
                running = min(jobs, waiting[0])
            results.append(run(chapter, kernel_threads(running)))
        with lock:
            waiting[0] -= 1
        return results

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = [r for rs in pool.map(run_group, groups) for r in rs]
    done += [run(chapter, kernel_threads(1)) for chapter in last]
    by_name = {r.chapter: r for r in done}
    return [by_name[chapter] for chapter in chapters]


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def kernel_threads(running: int, cores: int | None = None) -> int:
    """Compute threads for a kernel that starts while ``running`` parts (itself included)
    run side by side: the cores shared out, at least one. More threads than cores made the
    spinning OpenMP threads of torch and BLAS slow every chapter several-fold."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, running))


def thread_environment(threads: int) -> dict[str, str]:
    """The kernel's environment with ``threads`` compute threads (variables the caller set
    are kept)."""
    return {**{name: str(threads) for name in THREAD_VARIABLES}, **os.environ}


def kernel_manager(threads: int):
    """A Jupyter kernel manager class whose kernels start with ``threads`` compute threads."""
    from jupyter_client.manager import AsyncKernelManager

    class ThreadLimitedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw["env"] = {**thread_environment(threads), **(kw.get("env") or {})}
            return await super().start_kernel(**kw)

    return ThreadLimitedKernelManager


def run_chapter(chapter: str, profile: dict, overrides: dict, root: Path = ROOT,
                profile_name: str = "", parts: list | None = None, force: bool = True,
                threads: int | None = None) -> ChapterResult:
    """Execute one chapter under a loaded profile, unless (``force`` False) its inputs match
    its manifest; a failure is returned, not raised."""
    import jupytext

    source = root / SOURCE_DIR / f"{chapter}.md"
    start = time.perf_counter()
    try:
        if not source.is_file():
            raise ChapterError(chapter, f"source {source} does not exist")
        notebook = jupytext.read(source)
        params = chapter_parameters(chapter, declared_parameters(notebook), profile, overrides)
        inputs = chapter_inputs(chapter, params, root, parts or [])
        if not force and is_current(chapter, inputs, root):
            return ChapterResult(chapter, True, time.perf_counter() - start, cached=True)
        manifest_path(chapter, root).unlink(missing_ok=True)  # a failed run leaves none
        peak = execute_chapter(notebook, source, root / EXECUTED_DIR / f"{chapter}.ipynb",
                               params, root, threads)
        seconds = time.perf_counter() - start
        write_manifest(chapter, inputs, profile_name, seconds, root, peak)
        return ChapterResult(chapter, True, seconds, peak_mib=peak)
    except ChapterError as err:
        return ChapterResult(chapter, False, time.perf_counter() - start, str(err))


def summary_table(results: list[ChapterResult]) -> str:
    """A plain-text table of chapter, status and wall time, with the total."""
    width = max([len(r.chapter) for r in results] + [7])
    lines = [f"{'chapter':<{width}}  status  seconds  peak MiB"]
    lines += [f"{r.chapter:<{width}}  {r.status:<6}  "
              + (f"{'cached':>7}" if r.cached else f"{r.seconds:7.1f}")
              + ("" if r.peak_mib is None else f"  {r.peak_mib:8,.0f}") for r in results]
    lines.append(f"{'total':<{width}}  {'':<6}  {sum(r.seconds for r in results):7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    """Command line: run chapters, print the summary, return 0 only if all succeeded."""
    parser = argparse.ArgumentParser(prog="python -m helpers.book.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default",
                        help="parameter profile in notebooks/profiles/ (quick, default, paper)")
    parser.add_argument("--chapter", action="append",
                        help="run only this chapter (repeatable); default: all in _toc.yml")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"),
                        help="override one parameter of the chapter named with --chapter")
    parser.add_argument("--jobs", type=int, default=1,
                        help="toc parts run side by side, this many at a time (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="rerun every chapter, even those whose inputs are unchanged")
    parser.add_argument("--list", action="store_true", help="list the chapters and exit")
    args = parser.parse_args(argv)

    toc_chapters = chapters_from_toc(root / "_toc.yml")
    if args.list:
        print("\n".join(toc_chapters))
        return 0
    chapters = args.chapter or toc_chapters
    unknown = [c for c in chapters if c not in toc_chapters]
    if unknown:
        parser.error(f"chapter(s) {unknown} are not in _toc.yml; known: {toc_chapters}")
    if args.parameter and len(chapters) != 1:
        parser.error("-p overrides apply to one chapter: name it with --chapter")

    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give 1 or more")
    start = time.perf_counter()
    results = run_chapters(chapters, args.profile, parse_overrides(args.parameter), root,
                           jobs=args.jobs, force=args.force)
    print("\n" + summary_table(results))
    if args.jobs > 1:
        print(f"wall time with --jobs {args.jobs}: {time.perf_counter() - start:.1f} s")
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"FAILED {r.message}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
