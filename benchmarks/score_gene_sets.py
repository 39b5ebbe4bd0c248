"""Benchmark: the one-pass hallmark scorer against looping scanpy's score_genes over every kept
hallmark, at 100k and 400k simulated muscle-atlas cells, and against one bare sparse product.

Run: python benchmarks/score_gene_sets.py [--cells 100000 400000] [--genes 2000]
Prints, per size: seconds for the score_genes loop, the one-pass scorer and one sparse product
X @ W, the speed-up (loop / one-pass), the one-pass / product ratio and the largest absolute
difference between the two scorers' values.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from helpers.common import expression
from helpers.hallmarkage import atlas_simulator, hallmark_scoring, hallmark_sets


def timed(function, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("scanpy").setLevel(logging.ERROR)
    log_cpm, _, _ = expression.real_muscle_log_cpm()
    frameworks = hallmark_sets.load_frameworks()
    design = atlas_simulator.load_design()
    print(f"{'cells':>8} {'sets':>5} {'nnz':>11} {'loop s':>8} {'one-pass s':>10} "
          f"{'X@W s':>7} {'speed-up':>8} {'vs X@W':>7} {'max |diff|':>10}")
    for n_cells in args.cells:
        atlas = atlas_simulator.simulate(log_cpm, frameworks, design,
                                         {"n_cells": n_cells, "n_genes": args.genes}, args.seed)
        adata = atlas.adata
        sets = hallmark_sets.kept_gene_sets(
            hallmark_sets.detection_report(frameworks, adata.var_names))
        loop, t_loop = timed(hallmark_scoring.score_with_scanpy, adata, sets)
        one, t_one = timed(hallmark_scoring.score_gene_sets, adata, sets)
        weights = hallmark_scoring.score_weights(adata, sets)
        _, t_product = timed(adata.X.__matmul__, weights)
        diff = np.abs(loop.to_numpy() - one.to_numpy()).max()
        print(f"{n_cells:>8} {len(sets):>5} {adata.X.nnz:>11,} {t_loop:>8.1f} {t_one:>10.2f} "
              f"{t_product:>7.2f} {t_loop / t_one:>7.0f}x {t_one / t_product:>6.1f}x "
              f"{diff:>10.1e}", flush=True)


if __name__ == "__main__":
    main()
