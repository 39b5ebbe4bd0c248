"""Wall time and peak memory of the HallmarkAge pipeline at the paper's scale (issue 8).

Target: the ``paper`` profile (423,086 simulated cells x 5,000 genes) in under 30 minutes
within 24 GiB on 2 cores. Steps: simulate the atlas (or read it from the cache), score every
hallmark, build metacells, cross-validate and refit the three ridge clocks, leave one batch
out, leave one dataset out, embed and cluster a sample in hallmark space, and read the
residuals. Run: ``python benchmarks/hallmark_pipeline_scale.py [--profile quick]``.
Each line gives the step's wall time and the process's peak resident memory so far.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from measure import peak_memory_gb

from helpers.book.run import load_profile
from helpers.hallmarkage import (
    atlas_simulator,
    clock_diagnostics,
    hallmark_clocks,
    hallmark_pipeline,
    hallmark_space,
)


def chapter_parameters(profile: str) -> dict:
    """The clocks chapter's parameters in a profile (the benchmark runs what the book runs)."""
    spec = load_profile(profile)
    return {**spec.get("all", {}), **spec["chapters"].get("h2_hallmark_clocks", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedded", type=int, default=30000,
                        help="cells embedded in hallmark space (a seeded sample)")
    args = parser.parse_args()
    p = chapter_parameters(args.profile)
    settings = hallmark_clocks.Settings(n_hvg=p.get("n_hvg", 2000), n_pcs=p.get("n_pcs", 50),
                                        hvg_span=p.get("hvg_span", 0.3), seed=args.seed)
    k, per_unit, n_folds = p.get("k", 50), p.get("per_unit", 50), p.get("n_folds", 5)
    start = last = time.perf_counter()

    def step(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        print(f"{name:<44} {now - last:8.1f} s   peak RSS {peak_memory_gb():5.2f} GiB",
              flush=True)
        last = now

    print(f"profile {args.profile}: k={k}, metacells per unit={per_unit}, folds={n_folds}, "
          f"{settings}")
    atlas = atlas_simulator.atlas_for(args.profile, args.seed)
    step(f"atlas {atlas.adata.n_obs:,} x {atlas.adata.n_vars:,} (simulate or read)")
    scored = hallmark_pipeline.score(atlas.adata, seed=args.seed)
    step(f"score {len(scored.gene_sets)} hallmarks")
    study = hallmark_pipeline.clock_study(scored, settings, k, per_unit, n_folds)
    step(f"metacells ({len(study.metacells.obs):,}) + {n_folds}-fold clocks + refit")
    for column in ("batch", "dataset"):
        hallmark_clocks.held_out(scored.adata, study.metacells, column, settings)
        step(f"leave one {column} out")
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(scored.adata.n_obs, min(args.embedded, scored.adata.n_obs),
                              replace=False))
    hallmark_space.embed_and_cluster(
        hallmark_space.hallmark_adata(scored.scores.iloc[rows], scored.adata.obs.iloc[rows]),
        seed=args.seed)
    step(f"hallmark space: {len(rows):,} cells embedded")
    residual = hallmark_clocks.held_out_residual(study.predictions, study.metacells,
                                                 study.chosen)
    cells = clock_diagnostics.cell_residuals(study.metacells.plan, residual)
    genes = {g for s in scored.gene_sets.values() for g in s}
    clock_diagnostics.residual_genes(study.metacells, residual, genes)
    step(f"residuals ({np.isfinite(cells).mean():.0%} of cells drawn)")
    print(study.table[study.table["Split"] == "Test"].round(2).to_string(index=False))
    print(f"total {time.perf_counter() - start:.1f} s (target < 1800 s); "
          f"peak RSS {peak_memory_gb():.2f} GiB (limit 24)")


if __name__ == "__main__":
    main()
