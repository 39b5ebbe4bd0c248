"""The out-of-core path: metacell sums and scanpy normalisation on a dask-backed atlas.

Beyond one machine's memory, the atlas is not loaded: AnnData reads the counts layer lazily
as a dask array of row blocks, scanpy's normalize_total and log1p run on it block by block,
and metacells are summed block by block (``pseudobulk.sum_counts_blocked``); with a
distributed scheduler the same graph runs on a cluster. This script runs that path on a
profile's cached atlas beside the in-memory one and checks both give the same numbers.
Run: ``python benchmarks/dask_metacells.py [--profile paper] [--block 50000]``.
"""

from __future__ import annotations

import argparse
import time

import anndata as ad
import dask
import h5py
import numpy as np
import scanpy as sc
from measure import peak_memory_gb

from helpers.hallmarkage import atlas_simulator, pseudobulk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block", type=int, default=50000, help="cells per dask block")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--per-unit", type=int, default=50)
    args = parser.parse_args()
    atlas_simulator.atlas_for(args.profile, args.seed)  # make sure the cached file exists
    path = atlas_simulator.atlas_folder(args.profile, args.seed) / "atlas.h5ad"
    dask.config.set(scheduler="threads", num_workers=2)
    with h5py.File(path) as f:
        obs = ad.io.read_elem(f["obs"])
        var = ad.io.read_elem(f["var"])
        counts = ad.experimental.read_elem_lazy(f["layers/counts"],
                                                chunks=(args.block, len(var)))
        plan, _ = pseudobulk.metacell_plan(obs, args.k, args.per_unit, args.seed)
        print(f"{args.profile}: {len(obs):,} cells x {len(var):,} genes in "
              f"{len(counts.chunks[0])} lazy blocks; {plan.shape[0]:,} metacells")
        start = time.perf_counter()
        lazy = ad.AnnData(X=counts, obs=obs, var=var)
        sc.pp.normalize_total(lazy, target_sum=1e4)
        sc.pp.log1p(lazy)
        per_block = lazy.X.map_blocks(  # dask's own mean does not take sparse blocks
            lambda block: np.asarray(block.sum(axis=0), dtype=np.float64),
            chunks=((1,) * len(counts.chunks[0]), (len(var),)), dtype=np.float64)
        lazy_means = per_block.sum(axis=0).compute() / len(obs)
        lazy_sums = pseudobulk.sum_counts_blocked(plan, counts)
        print(f"dask-backed: gene means + metacell sums {time.perf_counter() - start:6.1f} s,"
              f" peak RSS so far {peak_memory_gb():.2f} GiB")
    start = time.perf_counter()
    adata = ad.read_h5ad(path)
    means = np.asarray(adata.X.mean(axis=0)).ravel()
    sums = pseudobulk.sum_counts(plan, adata.layers["counts"])
    print(f"in memory:   read + gene means + metacell sums {time.perf_counter() - start:6.1f} s,"
          f" peak RSS {peak_memory_gb():.2f} GiB")
    print(f"largest difference: gene means {np.abs(lazy_means - means).max():.2e}, "
          f"metacell sums {np.abs(lazy_sums - sums).max():.2e}")


if __name__ == "__main__":
    main()
