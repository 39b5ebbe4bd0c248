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
