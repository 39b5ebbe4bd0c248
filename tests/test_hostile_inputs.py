"""Hostile and careless inputs (issue 24): each test feeds one bad input, or one bad sequence
of events, to the registry, the readers, the clocks, the scorer or model saving, and checks
that it is refused by name, never parsed unverified, and never loses earlier results. The
Optuna studies and the chapter runner have theirs in ``test_hostile_runs.py`` (a second file,
so that the two test workers share them)."""

import http.server
import pickle
import shutil
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.data import registry
from helpers.data.registry import HashMismatchError, fetch
from tests.conftest import requires_real_data

# --- Security -------------------------------------------------------------------------------


class _Planted:
    """Unpickling this writes a marker file: proof that the pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pickle ran"))


@requires_real_data
def test_a_pickle_swapped_in_after_the_hash_check_is_never_unpickled(tmp_path, monkeypatch):
    """The hook swaps the mirror file for a malicious pickle right after its bytes are hashed:
    the loader still gets the verified data and the planted pickle never runs."""
    from helpers.data import loaders
    from tests.conftest import real_mirror

    entry = registry.load_registry()["gse30870_methylation"]
    mirror = tmp_path / "mirror"
    (mirror / entry.path).parent.mkdir(parents=True)
    shutil.copy(real_mirror() / entry.path, mirror / entry.path)
    monkeypatch.setenv(registry.MIRROR_ENV, str(mirror))
    marker, swapped = tmp_path / "ran.txt", []

    def swap(source):
        Path(source).write_bytes(pickle.dumps(_Planted(marker)))
        swapped.append(source)

    monkeypatch.setattr(registry, "AFTER_VERIFY_HOOK", swap)
    adata = loaders.load_gse30870()
    assert swapped and not marker.exists()
    assert adata.n_obs == 16 and adata.uns["provenance"]["sha256"] == entry.sha256
    monkeypatch.setattr(registry, "AFTER_VERIFY_HOOK", None)
    with pytest.raises(HashMismatchError, match=entry.path):  # the swapped file, next time
        loaders.load_gse30870()
    assert not marker.exists()


def test_fetch_returns_a_private_copy_that_later_writes_to_the_mirror_do_not_reach(
        mirrored_scratch):
    content, entry, mirror = mirrored_scratch
    path = fetch(entry.key, {entry.key: entry})
    assert path.read_bytes() == content and mirror not in path.parents
    assert oct(path.parents[len(Path(entry.path).parts)].stat().st_mode)[-3:] == "700"
    (mirror / entry.path).write_bytes(b"changed")
    assert path.read_bytes() == content


@pytest.fixture
def served(tmp_path):
    """A local HTTP server over a folder (the 'internet' for unpinned downloads)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _unpinned(entry, url):
    return registry.RegistryEntry(**{**entry.__dict__, "sha256": None, "url": url})


def test_an_unpinned_file_lying_in_the_cache_is_downloaded_not_trusted(
        monkeypatch, isolated_cache, scratch_entry, served, capsys):
    content, pinned = scratch_entry
    folder, base = served
    (folder / "scratch.csv").write_bytes(content)
    entry = _unpinned(pinned, f"{base}/scratch.csv")
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)
    monkeypatch.setattr(registry, "load_registry", lambda *a: {entry.key: entry})
    cached = isolated_cache / "downloads" / entry.path
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"planted, never downloaded")
    assert registry.local_copy(entry.key) is None  # not counted as present
    assert fetch(entry.key).read_bytes() == content  # downloaded, the planted file replaced
    assert registry.recorded_hashes() == {entry.key: pinned.sha256}
    assert pinned.sha256 in capsys.readouterr().out
    assert registry.local_copy(entry.key) == cached
    cached.write_bytes(content + b"cg9,1\n")  # changed after the record: refused
    with pytest.raises(HashMismatchError, match="recorded for it"):
        fetch(entry.key)


def test_processes_recording_hashes_at_once_keep_every_record(monkeypatch, isolated_cache):
    """The hook holds each writer between reading and rewriting the record file: without the
    lock, every writer but one would lose its record."""
    import time

    monkeypatch.setattr(registry, "RECORD_HOOK", lambda key: time.sleep(0.05))
    keys = [f"file{i}" for i in range(6)]
    threads = [threading.Thread(target=registry.record_hash, args=(k, k * 8)) for k in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert registry.recorded_hashes() == {k: k * 8 for k in keys}


def test_a_mirror_variable_naming_a_missing_folder_says_so(monkeypatch, tmp_path,
                                                           scratch_entry):
    _, entry = scratch_entry
    monkeypatch.setenv(registry.MIRROR_ENV, str(tmp_path / "no-such-folder"))
    with pytest.raises(registry.DataUnavailableError,
                       match=r"AGING_BOOK_DATA_MIRROR=.*no-such-folder: no such folder"):
        fetch(entry.key, {entry.key: entry})


def test_a_corrupted_cache_entry_is_named_and_rebuilt(isolated_cache):
    from helpers.data import cache

    frame = pd.DataFrame({"a": [1.0, 2.0]}, index=["x", "y"])
    path = cache.cache_path("stage", {"p": 1})
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    with pytest.warns(UserWarning, match=f"{path.name}.*rebuilt"):
        again = cache.cached_frame("stage", {"p": 1}, lambda: frame)
    pd.testing.assert_frame_equal(again, frame)
    pd.testing.assert_frame_equal(cache.read_frame(path), frame)


@pytest.fixture(scope="module")
def fitted_clock(tmp_path_factory):
    """A tiny trained transformer clock, its feature space and its test rows."""
    from helpers.precious1gpt import clock_problem, transformer_clock
    from tests.test_transformer_clock import tiny_data

    problem = clock_problem.clock_problem(tiny_data(), seed=0, max_epochs=2, patience=2,
                                          workdir=tmp_path_factory.mktemp("work"),
                                          progress=False)
    result = transformer_clock.fit("tabtransformer", {}, problem.rows("fit"),
                                   problem.rows("valid"), problem.space.genes, problem.training)
    return result, problem.space, problem.rows("test")


def test_a_clock_folder_rewritten_with_its_manifest_is_refused(fitted_clock, tmp_path,
                                                               isolated_cache):
    """Whoever can write the clock folder can rewrite the manifest too; the manifest's own
    sha256 lives in the cache, outside the folder, so the forgery is caught."""
    import json

    from helpers.precious1gpt import transformer_clock as tc

    result, space, test = fitted_clock
    folder = tc.save_clock(tmp_path / "clock", result, space, {"data": "simulated"})
    assert tc.is_trusted_clock(folder)
    (folder / "about.json").write_text(json.dumps({"data": "forged"}))
    manifest = json.loads((folder / tc.MANIFEST).read_text())
    manifest["about.json"] = registry.sha256_of(folder / "about.json")
    (folder / tc.MANIFEST).write_text(json.dumps(manifest))
    assert not tc.is_trusted_clock(folder)
    with pytest.raises(ValueError, match="sha256 differs from the trusted one"):
        tc.load_clock(folder)
    copied = tmp_path / "copied"
    shutil.copytree(folder, copied)  # a folder this machine never saved
    with pytest.raises(ValueError, match="no trusted sha256"):
        tc.load_clock(copied)
    forged = registry.sha256_of(copied / tc.MANIFEST)  # vouched for explicitly: loads
    assert tc.load_clock(copied, manifest_sha256=forged).about == {"data": "forged"}


def test_saving_a_clock_never_deletes_a_folder_that_is_not_a_clock(fitted_clock, tmp_path,
                                                                   isolated_cache):
    from helpers.precious1gpt import transformer_clock as tc

    result, space, _ = fitted_clock
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="results: exists and is not a saved clock"):
        tc.save_clock(tmp_path / "results", result, space, {})
    assert (tmp_path / "results" / "thesis.tex").read_text() == "years of work"


def test_a_failed_save_keeps_the_previous_clock(fitted_clock, tmp_path, isolated_cache,
                                                monkeypatch):
    from helpers.precious1gpt import transformer_clock as tc

    result, space, test = fitted_clock
    folder = tc.save_clock(tmp_path / "clock", result, space, {"version": 1})
    expected = tc.load_clock(folder).predict(test)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(result.model, "save_model", broken)
    with pytest.raises(OSError, match="disk full"):
        tc.save_clock(folder, result, space, {"version": 2})
    again = tc.load_clock(folder)
    assert again.about["version"] == 1 and np.array_equal(again.predict(test), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "clock"]  # no partial left


# --- Values a model must refuse ---------------------------------------------------------------


@pytest.mark.parametrize("values, problem", [
    ([[2.1, -1.3]], "value outside [0, 1]"),     # M-values
    ([[55.0, 80.0]], "value outside [0, 1]"),    # percentages
    ([[np.inf, 0.5]], "infinite value in feature 'cg1'"),
])
def test_a_published_clock_refuses_m_values_percentages_and_infinity(values, problem):
    from helpers.common import clocks

    clock = clocks.linear_clock("toy", {"cg1": 1.0, "cg2": 2.0}, 0.5, unit="beta",
                                feature="CpG")
    for rule in ("refuse", "dataset_mean"):
        with pytest.raises(ValueError, match=re_escape(problem)):
            clocks.apply_clock(clock, pd.DataFrame(values, columns=["cg1", "cg2"]), rule=rule)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("scale, problem", [
    (lambda b: np.log2(b / (1 - b)), "value outside [0, 1]"),   # M-values
    (lambda b: 100 * b, "value outside [0, 1]"),                # percentages
    (lambda b: b.where(b.index != b.index[0], np.inf), "infinite value"),
])
def test_the_multimodal_encoder_refuses_methylation_that_is_not_beta_values(scale, problem):
    from helpers.precious1gpt import multimodal
    from tests.test_transformer_clock import tiny_data

    data = tiny_data()
    space = multimodal.fit_feature_space(data.values, data.obs)
    values = data.values["methylation"].clip(0.01, 0.99)
    obs = data.obs.loc[values.index]
    multimodal.encode(space, values, obs, "methylation")  # beta values: accepted
    with pytest.raises(ValueError, match=re_escape(problem)):
        multimodal.encode(space, values.apply(scale), obs, "methylation")


# --- GEO designs: parse what is unambiguous, refuse the rest ----------------------------------


def _fetal(tmp_path, weeks: list[str]):
    from tests.test_validation import FETAL, _read

    spec = {**FETAL, "characteristics": [FETAL["characteristics"][0],
                                         [f"gestational age (weeks): {w}" for w in weeks]]}
    return _read(tmp_path, spec, "GSE76641").obs


@pytest.mark.parametrize("text", ["12-14 weeks", "12 to 14 weeks", "-12", "12 days", "3 months",
                                  "12.5.1", "12 weeks (9 days)", "about 12+8"])
def test_ambiguous_gestational_weeks_are_refused_naming_sample_and_field(tmp_path, text):
    from helpers.data.formats import DataFormatError

    with pytest.raises(DataFormatError,
                       match=rf"sample 'GSM102', field 'gestational age \(weeks\)': "
                             rf"{re_escape(repr(text))} is not an unambiguous number of weeks"):
        _fetal(tmp_path, ["9", "12", text, "16"])


def test_weeks_plus_days_and_plain_forms_are_read(tmp_path):
    obs = _fetal(tmp_path, ["12+3 weeks", "12 weeks", "week 14", "16w"])
    np.testing.assert_allclose(obs["weeks"], [12 + 3 / 7, 12, 14, 16])


def _reprogramming(tmp_path, times: list[str], titles=None, cells=None):
    from tests.test_validation import REPROGRAMMING, _read

    spec = {**REPROGRAMMING,
            "characteristics": [cells or REPROGRAMMING["characteristics"][0],
                                [f"time point: {t}" if t else "" for t in times]]}
    if titles is not None:
        spec["titles"] = titles
    return _read(tmp_path, spec, "GSE54848").obs


@pytest.mark.parametrize("text", ["72 h", "week 2", "day -1", "3-5 days", "day 3 or 7"])
def test_a_time_point_that_is_not_a_day_is_refused(tmp_path, text):
    from helpers.data.formats import DataFormatError

    with pytest.raises(DataFormatError,
                       match=rf"sample 'GSM101', field 'time point': {re_escape(repr(text))} "
                             "is not an unambiguous day"):
        _reprogramming(tmp_path, ["day 0", text, "", "28 days", "", ""])


def test_a_negative_day_in_a_title_is_refused(tmp_path):
    from helpers.data.formats import DataFormatError

    titles = ["HDF_rep1", "Day-1_rep1", "Day 7_towards iPSC", "HDF day 28", "iPSC_rep1",
              "hESC_H9"]
    with pytest.raises(DataFormatError, match="sample 'GSM101', field 'title'.*negative day"):
        _reprogramming(tmp_path, ["day 0", "", "", "28 days", "", ""], titles=titles)


def test_a_stem_cell_line_with_a_time_point_is_refused(tmp_path):
    from helpers.data.formats import DataFormatError

    with pytest.raises(DataFormatError, match="sample 'GSM105' has a day after transfection "
                                              r"\(14\).*describe an ESC line"):
        _reprogramming(tmp_path, ["day 0", "day 3", "", "28 days", "", "day 14"])


def test_a_characteristics_key_repeated_with_another_value_is_refused(tmp_path):
    from helpers.data.formats import DataFormatError
    from tests.test_validation import FETAL, _read

    spec = {**FETAL, "characteristics": [*FETAL["characteristics"],
                                         ["tissue: brain", "tissue: lung", "tissue: lung",
                                          "tissue: lung"]]}
    with pytest.raises(DataFormatError, match="sample 'GSM101' lists characteristics key "
                                              "'tissue' twice with different values"):
        _read(tmp_path, spec, "GSE76641")


# --- Readers of the papers' sources -------------------------------------------------------------


@pytest.mark.parametrize("row", [3, 4])  # the first probe row (read as metadata before) and
def test_an_ewas_probe_row_with_a_leading_space_is_refused(tmp_path, row):  # a later one
    from helpers.data import ewas_datahub
    from helpers.data.formats import DataFormatError
    from tests.test_source_formats import EWAS_ROWS, _write

    rows = list(EWAS_ROWS)
    rows[row] = " " + rows[row]
    with pytest.raises(DataFormatError, match=rf"age.txt: line {row + 1} starts with the field "
                                              rf"' cg0000000{row - 2}', which has surrounding"):
        ewas_datahub.read_age_matrix(_write(tmp_path / "age.txt", rows))


@pytest.mark.parametrize(("which", "edit", "message"), [
    ("gct", lambda r: r[:4] + [r[4] + "\t7.5"] + r[5:],
     r"gene_tpm.gct.gz: line 5 \('ENSG00000227232.5'\) has 6 fields, the header 5"),
    ("gct", lambda r: r[:4] + ["ENSG00000227232.5\tWASH7P\t4.1\tinf\t1"] + r[5:],
     "infinite value in sample field 'GTEX-1117F-0426-SM-5EGHI'"),
    ("phenotypes", lambda r: r[:2] + ["GTEX-111CU\t1\t59-50\t0"], "field 'AGE'.*'59-50'"),
    ("phenotypes", lambda r: r[:2] + ["GTEX-111CU\t1\t50-55\t0"], "field 'AGE'.*'50-55'"),
    ("phenotypes", lambda r: r[:2] + ["GTEX-111CU\t3\t50-59\t0"],
     "field 'SEX' of subject 'GTEX-111CU' is '3', not 1 \\(male\\) or 2 \\(female\\)"),
])
def test_gtex_edge_cases_are_refused_by_file_and_field(tmp_path, which, edit, message):
    from helpers.data import gtex
    from helpers.data.formats import DataFormatError
    from tests.test_source_formats import ATTRIBUTES, GCT, PHENOTYPES, _gtex_files

    files = {"gct": GCT, "attributes": ATTRIBUTES, "phenotypes": PHENOTYPES}
    files[which] = edit(list(files[which]))
    with pytest.raises(DataFormatError, match=message):
        gtex.read_gtex(*_gtex_files(tmp_path, **files))


def test_a_gene_listed_three_times_counts_once():
    from helpers.hallmarkage import hallmark_sets

    report = hallmark_sets.detection_report(
        {"f": {"h": ["A", "B", "A", "C", "A"]}}, ["A", "B", "X"], aliases={}, min_detected=3)
    row = report.iloc[0]
    assert (row["n_genes"], row["n_detected"], row["kept"]) == (3, 2, False)
    assert row["detected"] == ("A", "B") and row["listed_twice"] == ("A",)


def test_the_scorer_reports_genes_it_leaves_out():
    import anndata as ad

    from helpers.hallmarkage import hallmark_scoring

    rng = np.random.default_rng(0)
    adata = ad.AnnData(rng.poisson(2.0, (60, 80)).astype(np.float32),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(80)]))
    with pytest.warns(UserWarning, match=r"left out of their scores.*h: 2 \(NOPE1, NOPE2\)"):
        scores = hallmark_scoring.score_gene_sets(
            adata, {"h": ["g1", "g2", "NOPE1", "g3", "NOPE2"], "k": ["g5", "g6"]})
    assert scores.attrs["absent_genes"] == {"h": ["NOPE1", "NOPE2"]}


# --- Damaged files name themselves ------------------------------------------------------------


def _damaged_gzip(path: Path) -> Path:
    import gzip

    data = gzip.compress(("\n".join(["#1.2", "1\t1", "Name\tDescription\tS1",
                                      "G1\tA\t1.0"] * 400)).encode())
    path.write_bytes(data[: len(data) // 2])  # truncated mid-stream
    return path


def test_a_truncated_gzip_names_the_file(tmp_path):
    from helpers.data import gtex
    from helpers.data.formats import DataFormatError

    path = _damaged_gzip(tmp_path / "gene_tpm.gct.gz")
    with pytest.raises(DataFormatError, match="gene_tpm.gct.gz: unreadable"):
        gtex.read_gct(path)


def test_a_broken_zip_names_the_file(tmp_path):
    from helpers.data import ewas_datahub
    from helpers.data.formats import DataFormatError

    path = tmp_path / "age.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(DataFormatError, match="age.zip: not a readable zip file"):
        ewas_datahub.read_age_matrix(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_rda_names_the_file(tmp_path, damage):
    import gzip

    from helpers.data import rdata_xdr

    path = tmp_path / "traits.rda"
    if damage == "truncated":
        whole = gzip.compress(b"RDX3\nX\n" + b"\x00\x00\x00\x03" * 50)
        path.write_bytes(whole[:-12])
        expected = "traits.rda: damaged .rda file"
    else:
        path.write_bytes(gzip.compress(b"RDX3\nX\n\x00\x00\x00\x03\x00\x04"))
        expected = "traits.rda: damaged .rda file, it ends or breaks"
    with pytest.raises(ValueError, match=expected):
        rdata_xdr.read_rda(path)


def test_malformed_yaml_names_the_file(tmp_path):
    from helpers.data.formats import DataFormatError

    path = tmp_path / "registry.yml"
    path.write_text("files:\n  - key: x\n    path: [unclosed\n")
    with pytest.raises(DataFormatError, match="registry.yml: not readable YAML"):
        registry.load_registry(path)


def test_a_damaged_sqlite_study_names_the_file(tmp_path):
    from helpers.precious1gpt import tuning

    path = tmp_path / "optuna.sqlite3"
    path.write_bytes(b"this is not an SQLite database " * 200)
    with pytest.raises(ValueError, match="optuna.sqlite3: not a usable Optuna storage"):
        tuning.open_study("study", f"sqlite:///{path}", seed=0)
