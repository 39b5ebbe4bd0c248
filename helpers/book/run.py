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
import contextlib
import hashlib
import json
import math
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from helpers.book.results import STAGING_ENV
from helpers.data.files import locked, replace_folder, write_whole
from helpers.data.formats import DataFormatError, read_yaml
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


INTERRUPTED = threading.Event()  # set on Ctrl-C: running chapters stop, waiting ones do not start


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
    interrupted: bool = False
    started: bool = True

    @property
    def status(self) -> str:
        """``cached``, ``ok``, ``FAILED``, ``STOPPED`` (interrupted) or ``not run``."""
        if not self.started:
            return "not run"
        if self.interrupted:
            return "STOPPED"
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


class ProfileError(ValueError):
    """A parameter profile or override that cannot be used; names the file (or option) and
    the key. Raised before any chapter starts."""


PROFILE_KEYS = ("all", "chapters")


def load_profile(name: str, root: Path = ROOT) -> dict:
    """A named parameter profile: ``{"all": {...}, "chapters": {chapter: {...}}}``; a missing
    file, unreadable YAML or an unknown top-level key is a :class:`ProfileError`."""
    path = root / PROFILES_DIR / f"{name}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / PROFILES_DIR).glob("*.yml"))
        raise ProfileError(f"no parameter profile {name!r} ({path}); known: {known}")
    try:
        doc = read_yaml(path) or {}
    except DataFormatError as err:
        raise ProfileError(str(err)) from None
    if not isinstance(doc, dict):
        raise ProfileError(f"{path}: expected a mapping with the keys {list(PROFILE_KEYS)}")
    unknown = sorted(set(doc) - set(PROFILE_KEYS))
    if unknown:
        raise ProfileError(f"{path}: unknown key(s) {unknown}; a profile has {list(PROFILE_KEYS)}")
    profile = {key: doc.get(key) or {} for key in PROFILE_KEYS}
    for key, block in profile.items():
        if not isinstance(block, dict):
            raise ProfileError(f"{path}: field {key!r} must be a mapping, not "
                               f"{type(block).__name__}")
    for chapter, block in profile["chapters"].items():
        if block is not None and not isinstance(block, dict):
            raise ProfileError(f"{path}: field chapters.{chapter} must be a mapping of "
                               "parameters")
    profile["chapters"] = {c: b or {} for c, b in profile["chapters"].items()}
    profile["path"] = str(path)
    return profile


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


_INTEGER = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?"
                      r"|[-+]?(0|[1-9][0-9]*)[eE][-+]?[0-9]+")
_WORDS = {"true": True, "True": True, "false": False, "False": False, "null": None,
          "None": None}


def parse_value(key: str, text: str):
    """One ``-p KEY VALUE`` value: a decimal integer, a decimal number, true/false, null, a
    JSON list or mapping, else the text itself. Nothing is read the YAML 1.1 way: '010' stays
    the text '010' (not 8), '12:30' stays text (not 750), 'yes' stays text (not True)."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    if text in _WORDS:
        return _WORDS[text]
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ProfileError(f"-p {key} {text!r}: not a readable JSON list or mapping "
                               f"({err.msg} at character {err.pos})") from None
    return text


def parse_overrides(pairs: list[list[str]] | None) -> dict:
    """Papermill-style ``-p KEY VALUE`` pairs, values read by :func:`parse_value`."""
    return {key: parse_value(key, value) for key, value in (pairs or [])}


def check_value(where: str, name: str, value, default):
    """Refuse a parameter value whose type differs from the chapter's declared default, or
    that is out of range (negative where the default is not; below 1 for a count ``n_*``
    whose default is at least 1). Returns nothing; raises :class:`ProfileError`."""
    def refuse(why: str):
        raise ProfileError(f"{where}: parameter {name} = {value!r} {why} (the chapter's "
                           f"default is {default!r})")

    if default is None or isinstance(default, str) and _looks_like_code(default):
        return  # no default, or one written as an expression: its type is not known here
    if isinstance(default, str):
        if not isinstance(value, str):
            refuse("is not text")
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            refuse("is not true or false")
        return
    if isinstance(default, int | float):
        kind = int if isinstance(default, int) else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            text = "is not a whole number" if kind is int else "is not a number"
            hint = " (leading zeros are ambiguous: write the number without them)" \
                if isinstance(value, str) and value.lstrip("+-").startswith("0") else ""
            refuse(text + hint)
        if isinstance(value, float) and not math.isfinite(value):
            refuse("is not finite")
        if (name.startswith("n_") or len(name) == 1) and default >= 1 and value < 1:
            refuse("must be at least 1")
        if default >= 0 and value < 0:
            refuse("must not be negative")
        return
    if isinstance(default, list | tuple) and not isinstance(value, list | tuple):
        refuse("is not a list")
    if isinstance(default, dict) and not isinstance(value, dict):
        refuse("is not a mapping")


def _looks_like_code(text: str) -> bool:
    return text.startswith(("(", "[", "{")) or "(" in text


def declared_by_chapter(chapters: list[str], root: Path) -> dict[str, dict]:
    """Each chapter's declared parameters and defaults (its source's ``parameters`` cell);
    a chapter without a source declares none (running it reports the missing source)."""
    import jupytext

    sources = {chapter: root / SOURCE_DIR / f"{chapter}.md" for chapter in chapters}
    return {chapter: declared_parameters(jupytext.read(source)) if source.is_file() else {}
            for chapter, source in sources.items()}


def validate_run(chapters: list[str], profile: dict, overrides: dict,
                 declared: dict[str, dict]) -> None:
    """Check the whole run before any chapter starts (``declared``: every toc chapter's
    parameters, :func:`declared_by_chapter`): chapter names in the profile exist in the toc,
    every key of the profile's ``all`` block is declared by some chapter (a typo there would
    reach none, silently), every per-chapter key and override is declared by that chapter,
    and each value has the type and range of the declared default. Raises
    :class:`ProfileError` naming the file and the key."""
    import difflib

    where = profile.get("path", "profile")
    for chapter in profile["chapters"]:
        if chapter not in declared:
            close = difflib.get_close_matches(chapter, list(declared), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ProfileError(f"{where}: chapters.{chapter} is not a chapter of _toc.yml{hint}")
    unknown = sorted(set(profile["all"]) - {k for names in declared.values() for k in names})
    if unknown:
        raise ProfileError(f"{where}: all sets {unknown}, which no chapter declares")
    for chapter, block in profile["chapters"].items():
        unknown = sorted(set(block) - set(declared[chapter]))
        if unknown:
            raise ProfileError(f"{where}: chapters.{chapter} sets {unknown}, which the chapter "
                               f"does not declare; it declares {sorted(declared[chapter])}")
    for chapter in chapters:
        unknown = sorted(set(overrides) - set(declared[chapter]))
        if unknown:
            raise ProfileError(f"-p: chapter {chapter} has no parameter(s) {unknown}; it "
                               f"declares {sorted(declared[chapter])}")
        params = {k: v for k, v in profile["all"].items() if k in declared[chapter]}
        for source_name, block in ((where, params),
                                   (f"{where}: chapters.{chapter}",
                                    profile["chapters"].get(chapter) or {}),
                                   ("-p", overrides)):
            for name, value in block.items():
                check_value(f"{source_name} ({chapter})", name, value,
                            declared[chapter][name])


PEAK_MEMORY_TAG = "runner-peak-memory"
PEAK_MEMORY_CELL = ("import resource\n"
                    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux")


def execute_chapter(notebook, source: Path, output: Path, parameters: dict, cwd: Path,
                    threads: int | None = None, env: dict | None = None) -> float | None:
    """Execute one chapter (read from ``source``) with papermill into ``output``; errors name
    the failing cell, a kernel that died included. ``threads`` (if given) caps the kernel's
    compute threads (:func:`kernel_threads`); ``env`` is added to the kernel's environment.
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
            kernel_manager_class=kernel_manager(threads, env or {}),
        )
    except PapermillExecutionError as err:
        number, first_line = source_code_cell(notebook, err.source)
        raise ChapterError(chapter, f"code cell {number} of {source} (starting {first_line!r}) "
                                    f"raised {err.ename}: {err.evalue}; the executed notebook "
                                    f"with the traceback is {output}") from err
    except KeyboardInterrupt:
        raise
    except Exception as err:  # the kernel died (out of memory, killed), timed out, ...
        where = running_cell(notebook, output)
        died = "the kernel died" if type(err).__name__ == "DeadKernelError" else \
            f"{type(err).__name__}: {err}"
        raise ChapterError(chapter, f"{died} while running {where} of {source} (out of "
                                    f"memory or killed?); the partly executed notebook is "
                                    f"{output}") from err
    return pop_peak_memory(output)


def running_cell(notebook, output: Path) -> str:
    """'code cell N (starting ...)': the last cell of the partly executed notebook that
    papermill marked as started, or 'an unknown cell' when it cannot be told."""
    import nbformat

    try:
        executed = nbformat.read(output, as_version=4)
    except Exception:
        return "an unknown cell"
    started = [cell for cell in executed.cells if cell.cell_type == "code"
               and cell.get("metadata", {}).get("papermill", {}).get("start_time")]
    if started:
        # cells run in order and papermill stamps each one when it starts: the last cell
        # stamped is the one the kernel was running when it died
        number, first_line = source_code_cell(notebook, started[-1].source)
        return f"code cell {number} (starting {first_line!r})"
    return "an unknown cell"


def pop_peak_memory(output: Path) -> float | None:
    """Remove the runner's memory cell from an executed notebook; its reading in MiB. The
    cell papermill injects with the run's parameters is kept but not rendered (tagged
    ``remove-cell``): the page shows the chapter's own parameters cell once."""
    import nbformat

    executed = nbformat.read(output, as_version=4)
    for cell in executed.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    cells = [c for c in executed.cells if PEAK_MEMORY_TAG in c.metadata.get("tags", [])]
    executed.cells = [c for c in executed.cells if c not in cells]
    nbformat.write(executed, output)
    if not cells:
        return None
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
    write_whole(path, json.dumps(record, indent=1))
    return path


def run_chapters(chapters: list[str], profile_name: str, overrides: dict,
                 root: Path = ROOT, out=None, jobs: int = 1,
                 force: bool = False) -> list[ChapterResult]:
    """Execute the chapters, printing a line and wall time for each: in order, or with
    ``jobs`` > 1 one toc part per worker (see the module docstring); a chapter whose inputs
    match its manifest is skipped unless ``force``. On Ctrl-C the running chapters are stopped
    ("STOPPED") and the others not started ("not run"). Results in input order."""
    out = out or sys.stdout
    INTERRUPTED.clear()
    profile = load_profile(profile_name, root)
    lock = threading.Lock()
    position = {chapter: i for i, chapter in enumerate(chapters, start=1)}
    parts = toc_parts(root / "_toc.yml")

    def run(chapter: str, threads: int | None = None) -> ChapterResult:
        if INTERRUPTED.is_set():
            return ChapterResult(chapter, False, 0.0, "not started (interrupted)",
                                 started=False)
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
                                                          f"{result.status}: {result.message}")
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
        futures = [pool.submit(run_group, group) for group in groups]
        while True:
            try:
                done = [r for f in futures for r in f.result()]
                break
            except KeyboardInterrupt:  # the main thread gets Ctrl-C: stop the kernels
                INTERRUPTED.set()
                stop_running_kernels()
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


RUNNING_KERNELS: set = set()  # kernel managers of the chapters running now (stopped on Ctrl-C)


def kernel_manager(threads: int | None, env: dict | None = None):
    """A Jupyter kernel manager class whose kernels start with ``threads`` compute threads
    (None: as the caller's environment says) and ``env`` added to their environment; each
    running kernel is listed in :data:`RUNNING_KERNELS` so that an interrupt can stop it."""
    from jupyter_client.manager import AsyncKernelManager

    base = dict(os.environ) if threads is None else thread_environment(threads)

    class RunnerKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw["env"] = {**base, **(env or {}), **(kw.get("env") or {})}
            result = await super().start_kernel(**kw)
            RUNNING_KERNELS.add(self)
            return result

        async def shutdown_kernel(self, *args, **kw):
            RUNNING_KERNELS.discard(self)
            return await super().shutdown_kernel(*args, **kw)

    return RunnerKernelManager


def stop_running_kernels() -> None:
    """Kill the kernels of the chapters running now (after Ctrl-C: their cells stop)."""
    for manager in list(RUNNING_KERNELS):
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            process.kill()


# Set in every chapter's kernel: no progress bars in rendered pages (tqdm reads TQDM_DISABLE).
PAGE_ENV = {"TQDM_DISABLE": "1"}

RUNS_DIR = Path(".cache") / "runs"  # running and failed notebooks, staged results, locks


def results_dir(root: Path) -> Path:
    """Where the chapters' recorded results live (``chapters/results``)."""
    return root / EXECUTED_DIR / RESULTS_SUBDIR


@contextlib.contextmanager
def chapter_lock(chapter: str, root: Path):
    """Hold the chapter's lock for one run; a second run of the same chapter (another
    process) is refused, naming the lock file, instead of mixing its outputs with this one's."""
    path = root / RUNS_DIR / f"{chapter}.lock"
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(path, wait=False))
        except BlockingIOError:
            raise ChapterError(chapter, f"another run of this chapter is in progress (it holds "
                                        f"{path}); nothing was changed") from None
        yield


def run_chapter(chapter: str, profile: dict, overrides: dict, root: Path = ROOT,
                profile_name: str = "", parts: list | None = None, force: bool = True,
                threads: int | None = None) -> ChapterResult:
    """Execute one chapter under a loaded profile, unless (``force`` False) its inputs match
    its manifest; a failure is returned, not raised. The notebook and the recorded results are
    written to a staging place and replace the previous ones only when the chapter succeeds;
    a failed or interrupted run leaves them as they were (its own notebook, with the
    traceback, stays in ``.cache/runs/<chapter>.ipynb``)."""
    import shutil

    import jupytext

    source = root / SOURCE_DIR / f"{chapter}.md"
    start = time.perf_counter()
    runs = root / RUNS_DIR
    staging = runs / f"{chapter}.results"
    running = runs / f"{chapter}.ipynb"
    try:
        if not source.is_file():
            raise ChapterError(chapter, f"source {source} does not exist")
        notebook = jupytext.read(source)
        params = chapter_parameters(chapter, declared_parameters(notebook), profile, overrides)
        inputs = chapter_inputs(chapter, params, root, parts or [])
        if not force and is_current(chapter, inputs, root):
            return ChapterResult(chapter, True, time.perf_counter() - start, cached=True)
        with chapter_lock(chapter, root):
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            peak = execute_chapter(notebook, source, running, params, root, threads,
                                   env={STAGING_ENV: str(staging.resolve()), **PAGE_ENV})
            manifest_path(chapter, root).unlink(missing_ok=True)
            recorded = staging / chapter
            if recorded.is_dir():
                replace_folder(recorded, results_dir(root) / chapter)
            (root / EXECUTED_DIR).mkdir(parents=True, exist_ok=True)
            running.replace(root / EXECUTED_DIR / f"{chapter}.ipynb")
            seconds = time.perf_counter() - start
            write_manifest(chapter, inputs, profile_name, seconds, root, peak)
            return ChapterResult(chapter, True, seconds, peak_mib=peak)
    except ChapterError as err:
        stopped = INTERRUPTED.is_set()
        return ChapterResult(chapter, False, time.perf_counter() - start,
                             "interrupted (Ctrl-C)" if stopped else str(err),
                             interrupted=stopped)
    except KeyboardInterrupt:
        INTERRUPTED.set()
        stop_running_kernels()
        return ChapterResult(chapter, False, time.perf_counter() - start,
                             "interrupted (Ctrl-C)", interrupted=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def summary_table(results: list[ChapterResult]) -> str:
    """A plain-text table of chapter, status and wall time, with the total."""
    width = max([len(r.chapter) for r in results] + [7])
    lines = [f"{'chapter':<{width}}  {'status':<7}  seconds  peak MiB"]
    lines += [f"{r.chapter:<{width}}  {r.status:<7}  "
              + (f"{'cached':>7}" if r.cached else f"{r.seconds:7.1f}")
              + ("" if r.peak_mib is None else f"  {r.peak_mib:8,.0f}") for r in results]
    lines.append(f"{'total':<{width}}  {'':<7}  {sum(r.seconds for r in results):7.1f}")
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
    try:
        profile = load_profile(args.profile, root)
        overrides = parse_overrides(args.parameter)
        validate_run(chapters, profile, overrides, declared_by_chapter(toc_chapters, root))
    except ProfileError as err:
        print(f"error: {err}\nno chapter was run", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        results = run_chapters(chapters, args.profile, overrides, root, jobs=args.jobs,
                               force=args.force)
    except KeyboardInterrupt:
        print("\ninterrupted (Ctrl-C) between chapters; no summary could be collected",
              file=sys.stderr)
        return 130
    print("\n" + summary_table(results))
    if args.jobs > 1:
        print(f"wall time with --jobs {args.jobs}: {time.perf_counter() - start:.1f} s")
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"{r.status} {r.chapter}: {r.message}", file=sys.stderr)
    if any(r.interrupted or not r.started for r in results):
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
