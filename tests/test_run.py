"""The chapter runner: toc order, profiles, overrides, and a non-zero exit naming the failure."""

import textwrap
from pathlib import Path

import nbformat
import pytest

from helpers.book import run
from helpers.book.results import STAGING_ENV

CHAPTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# {title}

```{{code-cell}} ipython3
:tags: [parameters]
seed = 0
n = 10
```

```{{code-cell}} ipython3
{body}
```
"""


def _book(tmp_path, chapters: dict[str, str]):
    (tmp_path / "notebooks" / "profiles").mkdir(parents=True)
    for name, body in chapters.items():
        (tmp_path / "notebooks" / f"{name}.md").write_text(CHAPTER.format(title=name, body=body))
    toc = "format: jb-book\nroot: book/intro\nchapters:\n" + "".join(
        f"  - file: chapters/{name}\n" for name in chapters)
    (tmp_path / "_toc.yml").write_text(toc)
    (tmp_path / "notebooks" / "profiles" / "quick.yml").write_text(textwrap.dedent("""\
        all: {seed: 7}
        chapters: {}
        """))
    return tmp_path


def _parts_toc(root, parts: dict[str, list[str]]) -> None:
    """Write a toc of captioned parts, each listing its executed chapters in order."""
    lines = ["format: jb-book", "root: book/intro", "parts:"]
    for caption, chapters in parts.items():
        files = ", ".join(f"{{file: chapters/{c}}}" for c in chapters)
        lines += [f"  - caption: {caption}", f"    chapters: [{files}]"]
    (root / "_toc.yml").write_text("\n".join(lines) + "\n")


def test_toc_order_is_the_run_order(tmp_path):
    book = _book(tmp_path, {"b_second": "1", "a_first": "1"})
    assert run.chapters_from_toc(book / "_toc.yml") == ["b_second", "a_first"]


def test_repository_toc_lists_the_data_sources_chapter():
    assert "data_sources" in run.chapters_from_toc(run.ROOT / "_toc.yml")


def test_parameters_come_from_profile_then_overrides():
    profile = {"all": {"seed": 7, "profile": "quick"}, "chapters": {"ch": {"n": 3}}}
    params = run.chapter_parameters("ch", {"seed": 0, "n": 10}, profile, {"n": 5})
    assert params == {"seed": 7, "n": 5}  # 'profile' is not declared by this chapter


def test_unknown_override_is_refused_with_the_declared_names():
    profile = {"all": {}, "chapters": {}}
    with pytest.raises(run.ChapterError, match=r"no parameter\(s\) \['epochs'\].*\['n', 'seed'\]"):
        run.chapter_parameters("ch", {"seed": 0, "n": 10}, profile, {"epochs": 5})


def test_overrides_are_typed_like_papermill():
    assert run.parse_overrides([["n", "5"], ["lr", "0.1"], ["name", "abc"], ["ok", "true"]]) \
        == {"n": 5, "lr": 0.1, "name": "abc", "ok": True}


def test_runner_injects_parameters_and_writes_the_executed_notebook(tmp_path, capsys):
    book = _book(tmp_path, {"good": "result = seed * n"})
    code = run.main(["--profile", "quick", "--chapter", "good", "-p", "n", "3"], root=book)
    assert code == 0
    executed = nbformat.read(book / "chapters" / "good.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "seed = 7" in injected[0].source and "n = 3" in injected[0].source
    out = capsys.readouterr().out
    assert "[1/1] good (profile quick)" in out and "total" in out
    # the runner's peak-memory cell ran and was removed from the executed notebook
    assert not any(run.PEAK_MEMORY_TAG in c.metadata.get("tags", []) for c in executed.cells)
    peak = run.read_manifest("good", book)["peak_mib"]
    assert 20 < peak < 4000 and f", peak {peak:,} MiB" in out


def test_runner_exits_non_zero_naming_chapter_and_cell(tmp_path, capsys):
    book = _book(tmp_path, {"fine": "x = 1", "broken": "raise ValueError('planted failure')"})
    code = run.main(["--profile", "quick"], root=book)
    assert code == 1
    err = capsys.readouterr().err
    assert "chapter 'broken'" in err and "code cell 2 of" in err and "broken.md" in err
    assert "ValueError: planted failure" in err
    assert "fine" not in err
    assert (book / "chapters" / "fine.ipynb").is_file()


def test_unknown_profile_lists_known_ones(tmp_path):
    book = _book(tmp_path, {"good": "1"})
    with pytest.raises(run.ProfileError, match=r"known: \[.quick.\]"):
        run.load_profile("fast", book)


def test_parallel_runs_keep_each_part_in_order_and_the_appendix_last(tmp_path, monkeypatch):
    import threading
    import time as clock

    (tmp_path / "notebooks" / "profiles").mkdir(parents=True)
    (tmp_path / "notebooks" / "profiles" / "quick.yml").write_text("all: {}\nchapters: {}\n")
    _parts_toc(tmp_path, {"One": ["a1", "a2"], "Two": ["b1"], "Appendix": ["z_appendix"]})
    events, lock, threads = [], threading.Lock(), {}

    def fake(chapter, profile, overrides, root, *rest):
        with lock:
            events.append(("start", chapter))
            threads[chapter] = rest[-1]
        clock.sleep(0.2 if chapter == "a1" else 0.05)
        with lock:
            events.append(("end", chapter))
        return run.ChapterResult(chapter, chapter != "b1", 0.1, "" if chapter != "b1" else "x")

    monkeypatch.setattr(run, "run_chapter", fake)
    monkeypatch.setattr(run.os, "cpu_count", lambda: 2)
    chapters = run.chapters_from_toc(tmp_path / "_toc.yml")
    results = run.run_chapters(chapters, "quick", {}, tmp_path, jobs=2)
    assert [r.chapter for r in results] == ["a1", "a2", "b1", "z_appendix"]
    assert [r.ok for r in results] == [True, True, False, True]
    order = events
    assert order.index(("start", "b1")) < order.index(("end", "a1"))  # parts side by side
    assert order.index(("end", "a1")) < order.index(("start", "a2"))  # a part stays in order
    last_end = max(order.index(("end", c)) for c in ("a1", "a2", "b1"))
    assert order.index(("start", "z_appendix")) > last_end  # the appendix waits for all
    # two parts side by side on two cores: one thread each; a chapter that starts alone (a2,
    # after part Two finished; the appendix) gets both
    assert threads == {"a1": 1, "b1": 1, "a2": 2, "z_appendix": 2}


def test_a_kernel_starts_with_the_threads_it_was_given(tmp_path, monkeypatch):
    for name in run.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    book = _book(tmp_path, {"env": "import os\nprint('threads', os.environ['OMP_NUM_THREADS'])"})
    result = run.run_chapter("env", run.load_profile("quick", book), {}, book, "quick",
                             threads=1)
    assert result.ok, result.message
    executed = nbformat.read(book / "chapters" / "env.ipynb", as_version=4)
    assert "threads 1" in executed.cells[-1].outputs[0]["text"]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a caller's own setting is kept
    assert run.thread_environment(1)["OMP_NUM_THREADS"] == "3"


# --- incremental runs ------------------------------------------------------------------------

def _incremental_book(tmp_path):
    """Two chapters in one part (a2 may read a1's results), helpers code, a lock and data."""
    book = _book(tmp_path, {"a1": "x = 1", "a2": "y = 2"})
    _parts_toc(book, {"One": ["a1", "a2"]})
    for name, text in {"helpers/mod.py": "A = 1\n", "requirements/lock.txt": "x==1\n",
                       "data/registry.md": "sha256 abc\n"}.items():
        (book / name).parent.mkdir(parents=True, exist_ok=True)
        (book / name).write_text(text)
    return book


def _fake_execution(monkeypatch):
    """Replace papermill: write the notebook and a result that depends on the parameters."""
    executed = []

    def fake(notebook, source, output, parameters, cwd, threads=None, env=None):
        executed.append(source.stem)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("{}")
        results = Path(env[STAGING_ENV]) / source.stem
        results.mkdir(parents=True, exist_ok=True)
        (results / "claims.json").write_text(str(parameters.get("n", "")))

    monkeypatch.setattr(run, "execute_chapter", fake)
    return executed


def test_a_rerun_skips_chapters_whose_inputs_are_unchanged(tmp_path, monkeypatch, capsys):
    book = _incremental_book(tmp_path)
    executed = _fake_execution(monkeypatch)
    assert run.main(["--profile", "quick"], root=book) == 0
    assert executed == ["a1", "a2"]
    assert run.main(["--profile", "quick"], root=book) == 0
    assert executed == ["a1", "a2"]  # nothing changed: nothing runs
    out = capsys.readouterr().out
    assert "a1: cached" in out and "a2: cached" in out
    source = book / "notebooks" / "a2.md"
    source.write_text(source.read_text().replace("# a2", "# a2, new prose"))
    run.main(["--profile", "quick"], root=book)
    assert executed[2:] == ["a2"]  # a prose edit reruns that chapter only
    source = book / "notebooks" / "a1.md"
    source.write_text(source.read_text().replace("# a1", "# a1, new prose"))
    run.main(["--profile", "quick"], root=book)
    assert executed[3:] == ["a1"]  # a1 recorded the same results: a2 stays cached
    run.main(["--profile", "quick", "--chapter", "a1", "-p", "n", "3"], root=book)
    run.main(["--profile", "quick", "--chapter", "a2"], root=book)
    assert executed[4:] == ["a1", "a2"]  # a1 recorded other results: a2 (downstream) reruns
    run.main(["--profile", "quick"], root=book)
    assert executed[6:] == ["a1", "a2"]  # both back to the profile's n = 10
    run.main(["--profile", "quick"], root=book)
    run.main(["--profile", "quick", "--force"], root=book)
    assert executed[8:] == ["a1", "a2"]
    manifest = run.read_manifest("a1", book)
    assert manifest["profile"] == "quick" and manifest["key"] == run.inputs_key(
        manifest["inputs"])


def test_the_cache_key_changes_with_parameters_code_lock_data_and_upstream_results(tmp_path):
    book = _incremental_book(tmp_path)
    parts = run.toc_parts(book / "_toc.yml")

    def key(params=None):
        return run.inputs_key(run.chapter_inputs("a2", params or {"n": 10}, book, parts))

    base = key()
    assert key() == base  # unchanged inputs: the same key
    assert key({"n": 11}) != base
    changes = {"helpers/mod.py": "A = 2\n", "helpers/new.py": "", "requirements/lock.txt":
               "x==2\n", "data/registry.md": "sha256 abd\n",
               "chapters/results/a1/claims.json": "[]", "notebooks/a2.md": "edited"}
    for name, text in changes.items():
        path = book / name
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_text() if path.is_file() else None
        path.write_text(text)
        assert key() != base, name
        path.write_text(old) if old is not None else path.unlink()
        assert key() == base, name
    (book / "helpers" / "__pycache__").mkdir()
    (book / "helpers" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"compiled")
    assert key() == base  # compiled files are not inputs
    # results of a chapter outside a2's part, or after it, are not a2's inputs
    assert run.upstream_chapters("a2", parts) == ["a1"] and run.upstream_chapters("a1", parts) == []


def test_a_failed_chapter_keeps_the_last_good_run_and_runs_again(tmp_path, monkeypatch):
    book = _incremental_book(tmp_path)
    executed = _fake_execution(monkeypatch)
    run.main(["--profile", "quick"], root=book)

    def broken(notebook, source, output, parameters, cwd, threads=None, env=None):
        executed.append(source.stem)
        raise run.ChapterError(source.stem, "planted failure")

    monkeypatch.setattr(run, "execute_chapter", broken)
    results = book / "chapters" / "results" / "a1" / "claims.json"
    assert run.main(["--profile", "quick", "--chapter", "a1", "-p", "n", "4"], root=book) == 1
    assert executed[-1] == "a1" and results.read_text() == ""  # the last good results kept
    assert '"n": 4' not in run.read_manifest("a1", book)["inputs"]["parameters"]
    assert run.main(["--profile", "quick", "--chapter", "a1", "-p", "n", "4"], root=book) == 1
    assert executed[-2:] == ["a1", "a1"]  # the failed inputs run again
    again = _fake_execution(monkeypatch)
    assert run.main(["--profile", "quick", "--chapter", "a1"], root=book) == 0
    assert again == []  # the kept run matches the profile: cached


def test_longer_parts_start_first_and_the_appendix_runs_last():
    parts = [("Foundations", ["f"]), ("One", ["p1", "p2", "p3"]), ("Real", ["r"]),
             ("Two", ["h1", "h2"]), ("Appendix", ["z"])]
    groups, last = run.run_groups(["f", "p1", "p2", "p3", "r", "h1", "h2", "z"], parts)
    assert groups == [["p1", "p2", "p3"], ["h1", "h2"], ["f"], ["r"]]
    assert last == ["z"]
