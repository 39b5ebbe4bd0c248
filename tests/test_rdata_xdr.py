"""The XDR .rda reader agrees with the rdata library (the reference) and refuses bad input."""


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


@requires_real_data
def test_real_450k_locations_match_the_rdata_library():
    path = fetch("hm450_locations")
    ours = loaders._read_rda_frame(path, "Locations")
    reference = read_with_rdata(path)["Locations"]
    assert len(ours) == 485512
    np.testing.assert_array_equal(ours.index.to_numpy(), reference.rownames)
    for column, values in reference.listData.items():
        np.testing.assert_array_equal(ours[str(column)].to_numpy(), values)
