"""The parameter-keyed cache: same parameters reuse, other parameters recompute, no pickles."""

import numpy as np
import pandas as pd
import pytest

from helpers.data.cache import cache_key, cached_frame, read_frame, write_frame


def test_frame_round_trip_keeps_values_and_types(tmp_path):
    frame = pd.DataFrame({"chr": ["chr1", "chrX"], "pos": np.array([10, 20], dtype=np.int32),
                          "beta": [0.1, 0.9]}, index=pd.Index(["cg1", "cg2"], name="probe"))
    write_frame(frame, tmp_path / "t.npz")
    back = read_frame(tmp_path / "t.npz")
    pd.testing.assert_frame_equal(back, frame)


def test_frame_with_unsupported_column_is_refused(tmp_path):
    with pytest.raises(TypeError, match="column 'x'"):
        write_frame(pd.DataFrame({"x": [[1], [2]]}), tmp_path / "t.npz")


def test_cached_frame_computes_once_per_parameter_set(isolated_cache):
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"v": [len(calls)]})

    first = cached_frame("stage", {"n": 1}, compute)
    again = cached_frame("stage", {"n": 1}, compute)
    other = cached_frame("stage", {"n": 2}, compute)
    assert len(calls) == 2
    assert first["v"].iloc[0] == again["v"].iloc[0] == 1
    assert other["v"].iloc[0] == 2


def test_cache_key_depends_on_every_parameter():
    assert cache_key("s", {"a": 1, "b": 2}) == cache_key("s", {"b": 2, "a": 1})
    assert cache_key("s", {"a": 1}) != cache_key("s", {"a": 2})
    assert cache_key("s", {"a": 1}) != cache_key("t", {"a": 1})


def test_a_cache_folder_finished_by_another_process_is_kept(tmp_path):
    from helpers.data.cache import publish_folder

    folder, ours, theirs = tmp_path / "atlas", tmp_path / "atlas.partial-1", tmp_path / "x"
    for path, text in ((ours, "ours"), (theirs, "theirs")):
        path.mkdir()
        (path / "done.txt").write_text(text)
    publish_folder(ours, folder, "done.txt")  # nothing there yet: ours moves into place
    assert (folder / "done.txt").read_text() == "ours" and not ours.exists()
    theirs.rename(tmp_path / "atlas.partial-2")
    publish_folder(tmp_path / "atlas.partial-2", folder, "done.txt")  # finished first: kept
    assert (folder / "done.txt").read_text() == "ours"
    assert not (tmp_path / "atlas.partial-2").exists()
    (folder / "done.txt").unlink()  # an unfinished folder is replaced
    late = tmp_path / "atlas.partial-3"
    late.mkdir()
    (late / "done.txt").write_text("late")
    publish_folder(late, folder, "done.txt")
    assert (folder / "done.txt").read_text() == "late"


# --- shared results (pickled, checked against the sha256 recorded when written) -------------

def test_cached_object_is_computed_once_and_a_corrupt_entry_is_recomputed(isolated_cache):
    from helpers.data.cache import cached_object, object_paths

    calls = []

    def compute():
        calls.append(1)
        return {"clock": np.arange(3), "n": len(calls)}

    first = cached_object("study", {"n": 1}, compute)
    again = cached_object("study", {"n": 1}, compute)
    assert calls == [1] and again["n"] == 1 and np.array_equal(again["clock"], np.arange(3))
    cached_object("study", {"n": 2}, compute)  # another parameter: computed
    assert len(calls) == 2
    payload, _ = object_paths("study", {"n": 1})
    payload.write_bytes(payload.read_bytes()[:-5])  # truncated: not loaded, recomputed
    assert cached_object("study", {"n": 1}, compute)["n"] == 3
    assert first["n"] == 1


def test_the_two_clock_chapters_share_one_clock_study(isolated_cache, monkeypatch):
    import anndata as ad

    from helpers.hallmarkage import hallmark_clocks, hallmark_pipeline

    rng = np.random.default_rng(0)
    adata = ad.AnnData(rng.poisson(1, (20, 5)).astype(np.float32),
                       obs=pd.DataFrame({"donor": list("ab") * 10},
                                        index=[f"c{i}" for i in range(20)]))
    scores = pd.DataFrame({"score_x": rng.normal(size=20)}, index=adata.obs_names)
    scored = hallmark_pipeline.Scored(adata, pd.DataFrame(), {}, scores)
    calls = []
    monkeypatch.setattr(hallmark_pipeline, "clock_study",
                        lambda *args: calls.append(args[2:]) or {"study": len(calls)})
    settings = hallmark_clocks.Settings(n_hvg=10, n_pcs=2, seed=0)
    study = hallmark_pipeline.shared_clock_study(scored, settings, 5, 2, 2, 10)
    assert hallmark_pipeline.shared_clock_study(scored, settings, 5, 2, 2, 10) == study
    assert len(calls) == 1  # the second chapter reads what the first computed
    hallmark_pipeline.shared_clock_study(scored, settings, 5, 2, 2, 20)  # another n_boot
    other = hallmark_clocks.Settings(n_hvg=10, n_pcs=3, seed=0)
    hallmark_pipeline.shared_clock_study(scored, other, 5, 2, 2, 10)  # other settings
    changed = hallmark_pipeline.Scored(adata.copy(), pd.DataFrame(), {}, scores.copy())
    changed.adata.X[0, 0] += 1  # other data
    hallmark_pipeline.shared_clock_study(changed, settings, 5, 2, 2, 10)
    assert len(calls) == 4
