"""``helpers.data.rfiles.read_r`` converts every kind of R object the book meets, and agrees with
the ``rdata`` library (the reference) on files it writes and on the real registry files."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import rdata

from helpers.data import rfiles
from helpers.data.formats import DataFormatError
from helpers.data.registry import fetch
from tests.conftest import read_with_rdata, requires_real_data


def same_column(ours, theirs) -> None:
    ours, theirs = pd.Series(np.asarray(ours, dtype=object)), pd.Series(
        np.asarray(theirs, dtype=object))
    assert (ours.isna() == theirs.isna()).all()
    assert list(ours[ours.notna()]) == list(theirs[theirs.notna()])


def test_data_frame_vectors_lists_and_matrices_match_rdata(tmp_path):
    frame = pd.DataFrame({
        "gene": ["A1BG", None, "TP53"], "n": pd.array([1, None, 3], dtype="Int64"),
        "beta": [0.1, np.nan, 0.9], "ok": pd.array([True, None, False], dtype="boolean"),
        "group": pd.Categorical(["case", "control", "case"])}, index=["s1", "s2", "s3"])
    objects = {"frame": frame, "named": {"a": np.array([1.0, 2.0]), "b": np.array([3], "int32")},
               "vector": np.array([4, 5, 6], dtype=np.int32),
               "matrix": np.arange(6, dtype=float).reshape(2, 3)}
    path = tmp_path / "objects.rda"
    rdata.write_rda(path, objects, compression="gzip")
    ours, theirs = rfiles.read_r(path), read_with_rdata(path)
    assert list(ours["frame"].index) == ["s1", "s2", "s3"]
    for column in frame.columns:
        same_column(ours["frame"][column], theirs["frame"][column])
    assert isinstance(ours["frame"]["group"].dtype, pd.CategoricalDtype)
    assert set(ours["named"]) == {"a", "b"}
    np.testing.assert_array_equal(ours["named"]["a"], theirs["named"]["a"])
    np.testing.assert_array_equal(ours["vector"], theirs["vector"])
    np.testing.assert_array_equal(ours["matrix"].to_numpy(), theirs["matrix"])


def test_one_named_object_and_a_missing_name(tmp_path):
    path = tmp_path / "one.rda"
    rdata.write_rda(path, {"ages": np.array([20.0, 65.0])})
    np.testing.assert_array_equal(rfiles.read_r(path, "ages"), [20.0, 65.0])
    with pytest.raises(DataFormatError, match=r"one.rda: no R object named 'age' .*'ages'"):
        rfiles.read_r(path, "age")


def test_broken_or_foreign_files_name_the_file(tmp_path):
    text = tmp_path / "table.rda"
    text.write_text("gene,count\nA1BG,3\n")
    with pytest.raises(DataFormatError, match="table.rda: not a readable R data file"):
        rfiles.read_r(text)
    path = tmp_path / "good.rda"
    rdata.write_rda(path, {"x": np.arange(1000, dtype=float)}, compression=None)
    truncated = tmp_path / "truncated.rda"
    truncated.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataFormatError, match="truncated.rda: not a readable R data file"):
        rfiles.read_r(truncated)


@requires_real_data
def test_real_expression_set_becomes_anndata_like_rdata_reads_it():
    path = fetch("gtex_yarn_bladder")
    ours = rfiles.read_r(path, "bladder")
    theirs = read_with_rdata(path)["bladder"]
    exprs = theirs.assayData.maps[0]["exprs"]
    assert isinstance(ours, ad.AnnData) and ours.shape == (11, 39377)
    np.testing.assert_array_equal(ours.X, exprs.values.T)
    assert list(ours.obs_names) == [str(s) for s in exprs.coords[exprs.dims[1]].values]
    assert list(ours.var_names) == [str(g) for g in exprs.coords[exprs.dims[0]].values]
    for column in ("AGE", "SMTSD", "GENDER"):
        same_column(ours.obs[column], theirs.phenoData.data[column])
    same_column(ours.var["hgnc_symbol"], theirs.featureData.data["hgnc_symbol"])


@requires_real_data
def test_real_data_frame_with_annotation_columns_matches_rdata():
    path = fetch("gse7621_expression")
    ours = rfiles.read_r(path, "mgp_LesnickParkinsonsExp")
    theirs = read_with_rdata(path)["mgp_LesnickParkinsonsExp"]
    assert ours.shape == theirs.shape == (13673, 29)
    for column in theirs.columns:
        same_column(ours[column], theirs[column])
