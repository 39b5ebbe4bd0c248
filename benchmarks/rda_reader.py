"""Benchmark: the book's R data reader against the rdata library on real registry files: the
450k annotation (S4 DataFrames of 485,512 probes) and a GTEx ExpressionSet.

Prints the wall time of each reader on the same hash-verified file and their ratio, and checks
that both give the same values. Run: .venv/bin/python benchmarks/rda_reader.py
"""

import time
import warnings

import numpy as np

from helpers.data import rdata_xdr, rfiles
from helpers.data.registry import fetch


def read_with_rdata(path):
    """The reference: rdata's parser and converter, S4 DataFrame left as a namespace."""
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return rdata.read_rda(str(path))


def main() -> None:
    for key, name in [("hm450_locations", "Locations"), ("hm450_islands", "Islands.UCSC")]:
        path = fetch(key)
        start = time.perf_counter()
        ours = rdata_xdr.s4_dataframe_columns(rdata_xdr.read_rda(path)[name], path)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        ref = read_with_rdata(path)[name]
        t_ref = time.perf_counter() - start
        same = np.array_equal(ours[0], ref.rownames) and all(
            np.array_equal(ours[1][str(k)], v) for k, v in ref.listData.items())
        print(f"{key}: xdr reader {t_ours:.2f} s, rdata {t_ref:.2f} s, "
              f"speed-up {t_ref / t_ours:.1f}x, identical: {same}")
    path = fetch("gtex_yarn_skin")
    start = time.perf_counter()
    ours = rfiles.read_r(path, "skin")
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    ref = read_with_rdata(path)["skin"]
    t_ref = time.perf_counter() - start
    same = np.array_equal(ours.X, ref.assayData.maps[0]["exprs"].values.T)
    print(f"gtex_yarn_skin (ExpressionSet -> AnnData): rfiles {t_ours:.2f} s, rdata "
          f"{t_ref:.2f} s, speed-up {t_ref / t_ours:.1f}x, identical counts: {same}")


if __name__ == "__main__":
    main()
