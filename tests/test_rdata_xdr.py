"""The XDR .rda reader agrees with the rdata library (the reference) and refuses bad input."""

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import rdata

from helpers.data import loaders, rdata_xdr
from helpers.data.registry import fetch
from tests.conftest import read_with_rdata, requires_real_data


def test_data_frame_written_by_rdata_reads_back(tmp_path):
    frame = pd.DataFrame({"gene": ["A1BG", "TP53", None], "n": np.array([1, 2, 3], "int32"),
                          "beta": [0.1, np.nan, 0.9], "ok": [True, False, True]})
    path = tmp_path / "frame.rda"
    rdata.write_rda(path, {"frame": frame}, compression="gzip")
    obj = rdata_xdr.read_rda(path)["frame"]
    columns = dict(zip(obj.attributes["names"].value, obj.value, strict=True))
    assert list(columns["gene"].value) == ["A1BG", "TP53", None]
    np.testing.assert_array_equal(columns["n"].value, [1, 2, 3])
    np.testing.assert_allclose(columns["beta"].value, [0.1, np.nan, 0.9])
    assert obj.attributes["class"].value[0] == "data.frame"


def test_non_rda_file_is_refused(tmp_path):
    path = tmp_path / "table.rda"
    path.write_text("probe,chr\ncg1,chr1\n")
    with pytest.raises(ValueError, match="table.rda: not an XDR .rda file"):
        rdata_xdr.read_rda(path)


# sha256 of the rdata library's reading of the real 450k locations file (rownames, then each
# column as text; ``frame_digest``), recorded with rdata 1.1.0 and rechecked against the library
# by the slow test below. The library needs 50-90 s for the file, our reader about 2.
LOCATIONS_REFERENCE = "ba2d06e2b0989f8e8669a75e65d91808731efaa27f41faac7e56850aa4cc856f"
slow = pytest.mark.skipif(not os.environ.get("AGING_BOOK_SLOW_TESTS"),
                          reason="slow reference check; set AGING_BOOK_SLOW_TESTS=1")


def frame_digest(index, columns: dict) -> str:
    """sha256 of a table's row names and columns, each value as text."""
    digest = hashlib.sha256("\n".join(map(str, index)).encode())
    for name, values in columns.items():
        digest.update(f"\n#{name}\n".encode())
        digest.update("\n".join(pd.Series(values).astype(str)).encode())
    return digest.hexdigest()


def test_frame_digest_sees_a_changed_value_name_or_row():
    frame = pd.DataFrame({"chr": ["chr1", "chr2"], "pos": [10, 20]}, index=["cg1", "cg2"])
    reference = frame_digest(frame.index, dict(frame.items()))
    assert frame_digest(frame.index, {"chr": ["chr1", "chr2"], "pos": [10, 20]}) == reference
    assert frame_digest(frame.index, {"chr": ["chr1", "chr2"], "pos": [10, 21]}) != reference
    assert frame_digest(frame.index, {"chrom": ["chr1", "chr2"], "pos": [10, 20]}) != reference
    assert frame_digest(["cg1", "cg3"], dict(frame.items())) != reference


@requires_real_data
def test_real_450k_locations_match_the_rdata_librarys_reading():
    ours = loaders._read_rda_frame(fetch("hm450_locations"), "Locations")
    assert len(ours) == 485512 and list(ours.columns) == ["chr", "pos", "strand"]
    assert frame_digest(ours.index, dict(ours.items())) == LOCATIONS_REFERENCE


@slow
@requires_real_data
def test_real_450k_locations_match_the_rdata_library():
    path = fetch("hm450_locations")
    ours = loaders._read_rda_frame(path, "Locations")
    reference = read_with_rdata(path)["Locations"]
    assert frame_digest(reference.rownames, dict(reference.listData.items())) == \
        LOCATIONS_REFERENCE
    np.testing.assert_array_equal(ours.index.to_numpy(), reference.rownames)
    for column, values in reference.listData.items():
        np.testing.assert_array_equal(ours[str(column)].to_numpy(), values)
