"""Hostile and careless runs (issue 24, with ``test_hostile_inputs.py``): Optuna studies that
are resumed, shared by workers (SQLite and a real PostgreSQL server) or created at once, and
chapter runs that fail, die, are interrupted, run twice at once or get bad profiles and
parameters: nothing repeated, nothing lost, every refusal named."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

# --- Optuna studies: resumed, shared, created at once -------------------------------------------

WORKER = """
import sys, time
from helpers.precious1gpt import tuning
url, total, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def objective(trial):
    hp = tuning.suggest_network(trial)
    time.sleep(0.05)
    return hp["learning_rate"] * 1000 + hp["dropout"]

study = tuning.open_study("shared", url, seed, enqueue=tuning.paper_trial())
tuning.run_trials(study, objective, total=total)
"""


def start_worker(url: str, total: int, seed: int = 0):
    """One worker process adding trials to the study at ``url`` until it holds ``total``."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", WORKER, url, str(total), str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs) -> list[tuple[int, str]]:
    """The exit codes and stderr of worker processes, once they end."""
    return [(p.wait(timeout=240), p.stderr.read()) for p in procs]


def run_workers(url: str, total: int, n: int = 2, seed: int = 0):
    """``n`` worker processes started together on one study; their exit codes and stderr."""
    return finish([start_worker(url, total, seed) for _ in range(n)])


def configurations(url: str) -> list[tuple]:
    """The parameters of the study's finished trials, and how many trials are finished."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name="shared", storage=url)
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return [tuple(sorted(t.params.items())) for t in done]


def test_a_resumed_study_draws_new_configurations_and_a_solo_study_is_reproducible(tmp_path):
    from helpers.precious1gpt import tuning

    url = f"sqlite:///{tmp_path / 'study.sqlite3'}"
    again = f"sqlite:///{tmp_path / 'again.sqlite3'}"  # the same seed, alone, from scratch
    # run to 3 trials (beside the solo study of 6), then resume to 6 in a new process
    assert [code for code, _ in finish([start_worker(url, 3), start_worker(again, 6)])] == [0, 0]
    assert [code for code, _ in run_workers(url, 6, n=1)] == [0]
    found = configurations(url)
    assert len(found) == 6 and len(set(found)) == 6
    assert dict(found[0]) == tuning.paper_trial()
    assert configurations(again) == found


def test_two_workers_on_a_new_sqlite_file_reach_the_target_exactly(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.sqlite3'}"
    results = run_workers(url, 13)
    assert [code for code, _ in results] == [0, 0], [err[-2000:] for _, err in results]
    found = configurations(url)
    assert len(found) == 13 and len(set(found)) == 13
    assert not any("failed" in err for _, err in results)


@pytest.fixture
def postgres_url():
    """A real PostgreSQL server on loopback for this test (Debian's package, installed with
    apt-get when missing): a new cluster with trust authentication on a free port, stopped
    and removed afterwards."""
    import glob
    import os
    import socket
    import subprocess
    import tempfile

    def binaries():
        return sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))

    if not binaries():
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       capture_output=True)
    bin_dir = Path(binaries()[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="aging-book-pg-", dir="/tmp"))
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its own system user runs it
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"

    def run(*args):
        return subprocess.run([*as_user, *map(str, args)], check=True, capture_output=True,
                              text=True, cwd=folder)

    run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(bin_dir / "pg_ctl", "-D", data, "-l", folder / "log", "-w", "-o",
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start")
    try:
        run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "optuna")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna"
    finally:
        run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_a_postgresql_study_to_its_target(postgres_url):
    """The README's multi-machine tuning, against a real server: two workers, one study, the
    target reached exactly, no configuration repeated, no trial lost."""
    import optuna
    from optuna.trial import TrialState

    results = run_workers(postgres_url, 12)
    assert [code for code, _ in results] == [0, 0], [err[-6000:] for _, err in results]
    found = configurations(postgres_url)
    assert len(found) == 12 and len(set(found)) == 12
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    unexplained = [t.number for t in study.trials
                   if t.state == TrialState.FAIL and not t.user_attrs.get("surplus")]
    assert unexplained == []


# --- The chapter runner ---------------------------------------------------------------------


def _runner_book(tmp_path, chapters: dict[str, str]):
    from tests.test_run import _book

    return _book(tmp_path, chapters)


def test_a_bad_profile_name_or_malformed_profile_is_refused_before_any_chapter(tmp_path,
                                                                              capsys):
    from helpers.book import run

    book = _runner_book(tmp_path, {"good": "x = 1"})
    assert run.main(["--profile", "fast"], root=book) == 2
    assert "no parameter profile 'fast'" in capsys.readouterr().err
    profile = book / "notebooks" / "profiles" / "quick.yml"
    profile.write_text("all: {seed: 7\nchapters: {}\n")
    assert run.main(["--profile", "quick"], root=book) == 2
    err = capsys.readouterr().err
    assert "quick.yml: not readable YAML" in err and "no chapter was run" in err
    assert not (book / "chapters" / "good.ipynb").exists()


@pytest.mark.parametrize("text, problem", [
    ("all: {seed: 7}\nchapters: {god: {n: 3}}\n", "chapters.god is not a chapter of _toc.yml; "
                                                  "did you mean 'good'"),
    ("all: {seed: 7}\nchapters: {good: {nn: 3}}\n", "chapters.good sets ['nn']"),
    ("all: {seed: 7, sead: 1}\nchapters: {}\n", "all sets ['sead'], which no chapter"),
    ("all: {seed: 7}\nchapter: {}\n", "unknown key(s) ['chapter']"),
    ("all: {seed: 7}\nchapters: {good: {n: ten}}\n", "n = 'ten' is not a whole number"),
    ("all: {seed: -1}\nchapters: {}\n", "seed = -1 must not be negative"),
])
def test_typos_and_wrong_types_in_a_profile_are_refused_by_name(tmp_path, capsys, text,
                                                                 problem):
    from helpers.book import run

    book = _runner_book(tmp_path, {"good": "x = 1"})
    (book / "notebooks" / "profiles" / "quick.yml").write_text(text)
    assert run.main(["--profile", "quick"], root=book) == 2
    err = capsys.readouterr().err
    assert problem in err and "quick.yml" in err


def test_parameter_values_are_not_read_as_yaml_1_1():
    from helpers.book import run

    assert run.parse_overrides([["a", "010"], ["b", "12:30"], ["c", "yes"], ["d", "0x1F"],
                                ["e", "1e-3"], ["f", "-4"], ["g", "[1, 2]"], ["h", "null"]]) \
        == {"a": "010", "b": "12:30", "c": "yes", "d": "0x1F", "e": 0.001, "f": -4,
            "g": [1, 2], "h": None}
    with pytest.raises(run.ProfileError, match=r"-p g '\[1, 2': not a readable JSON"):
        run.parse_overrides([["g", "[1, 2"]])


@pytest.mark.parametrize("value, problem", [
    ("-1", "n = -1 must be at least 1"), ("010", "leading zeros are ambiguous"),
    ("2.5", "n = 2.5 is not a whole number"), ("true", "n = True is not a whole number"),
    ("[1, 2", "not a readable JSON list"),
])
def test_a_bad_override_is_refused_before_the_chapter_starts(tmp_path, capsys, value,
                                                              problem):
    from helpers.book import run

    book = _runner_book(tmp_path, {"good": "x = 1"})
    assert run.main(["--profile", "quick", "--chapter", "good", "-p", "n", value],
                    root=book) == 2
    assert problem in capsys.readouterr().err
    assert not (book / "chapters" / "good.ipynb").exists()


def test_a_dead_kernel_is_named_with_its_cell_and_the_summary_printed(tmp_path, capsys):
    from helpers.book import run

    book = _runner_book(tmp_path, {"oom": "import os, signal\nos.kill(os.getpid(), "
                                          "signal.SIGKILL)"})
    assert run.main(["--profile", "quick"], root=book) == 1
    captured = capsys.readouterr()
    assert "the kernel died while running code cell 2" in captured.err
    assert "oom.md" in captured.err and "total" in captured.out and "FAILED" in captured.out


RECORDING = """from helpers.book.results import recorder
import pandas as pd
rec = recorder("rec", "quick", seed)
rec.table("t", pd.DataFrame({"n": [n]}), data="simulated")
assert n != 4, "planted failure after recording"
"""


def test_a_failed_run_keeps_the_previous_results_and_notebook(tmp_path, capsys):
    from helpers.book import run

    book = _runner_book(tmp_path, {"rec": RECORDING})
    assert run.main(["--profile", "quick"], root=book) == 0
    table = book / "chapters" / "results" / "rec" / "t.csv"
    executed = book / "chapters" / "rec.ipynb"
    assert pd.read_csv(table)["n"].tolist() == [10]
    before = executed.read_text()
    assert run.main(["--profile", "quick", "-p", "n", "4", "--chapter", "rec"],
                    root=book) == 1
    assert "planted failure after recording" in capsys.readouterr().err
    assert pd.read_csv(table)["n"].tolist() == [10] and executed.read_text() == before
    assert sorted(p.name for p in (book / "chapters" / "results").iterdir()) == ["rec"]


def test_a_second_run_of_a_running_chapter_is_refused(tmp_path, capsys):
    from helpers.book import run

    book = _runner_book(tmp_path, {"rec": RECORDING})
    with run.chapter_lock("rec", book):  # another process is running the chapter
        assert run.main(["--profile", "quick"], root=book) == 1
    assert "another run of this chapter is in progress" in capsys.readouterr().err
    assert not (book / "chapters" / "results" / "rec").exists()


def test_ctrl_c_stops_the_run_prints_the_summary_and_keeps_results(tmp_path):
    """Ctrl-C (SIGINT to the runner) while the second chapter runs."""
    import signal
    import subprocess
    import sys
    import time

    from helpers.paths import ROOT

    book = _runner_book(tmp_path, {
        "rec": RECORDING,
        "stop": "import pathlib, time\npathlib.Path('started.flag').write_text('1')\n"
                "time.sleep(120)",
        "later": "x = 1"})
    script = ("import sys; from pathlib import Path; from helpers.book import run; "
              f"sys.exit(run.main(sys.argv[1:], root=Path({str(book)!r})))")
    first = subprocess.run([sys.executable, "-c", script, "--profile", "quick", "--chapter",
                            "rec"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    # a process started in the background (make -j, CI) inherits SIGINT ignored: the runner
    # gets Python's default handling back, as in a terminal
    runner = subprocess.Popen([sys.executable, "-c", script, "--profile", "quick", "--force"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                          signal.SIG_DFL))
    flag, waited = book / "started.flag", 0.0
    while not flag.exists() and waited < 90:
        time.sleep(0.2)
        waited += 0.2
    assert flag.exists(), "the chapter never started"
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=90)
    assert runner.returncode == 130, err[-2000:]
    # no traceback of the runner (the kernels log their own lines, '[IPKernelApp] ...')
    assert "helpers/book/run.py" not in err, err[-3000:]
    assert not any(line.startswith("KeyboardInterrupt") for line in err.splitlines())
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "STOPPED" in lines["stop"] and "not run" in lines["later"] and "total" in lines
    assert pd.read_csv(book / "chapters" / "results" / "rec" / "t.csv")["n"].tolist() == [10]
