"""Time and peak memory to simulate the Precious1GPT cohorts at the paper's scale.

Target (issue 3): under 60 s and 6 GB on 2 cores.
Run: ``python benchmarks/simulate_paper_profile.py`` (``--profile quick`` for a smoke run).
Prints the wall time of reading the real anchors and of the generator itself, the peak
resident memory of the process, and the cohort shapes.
"""

from __future__ import annotations

import argparse
import time

from measure import peak_memory_gb

from helpers.precious1gpt import cohorts, simulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    design = cohorts.load_design()
    sizes = simulator.profile_sizes(args.profile, design)
    start = time.perf_counter()
    inputs = simulator.real_inputs(design)
    anchored = time.perf_counter()
    result = simulator.simulate(*inputs, design, sizes, args.seed)
    done = time.perf_counter()
    print(f"profile {args.profile}: {sizes}")
    print(f"methylation {result.methylation.shape}, expression {result.expression.shape}, "
          f"diseases {[a.shape for a in result.diseases.values()]}, ipsc {result.ipsc.shape}, "
          f"fetal {result.fetal.shape}")
    print(f"real anchors: {anchored - start:.1f} s; simulation: {done - anchored:.1f} s; "
          f"total {done - start:.1f} s (target < 60 s)")
    print(f"peak memory: {peak_memory_gb():.2f} GB (target < 6 GB)")


if __name__ == "__main__":
    main()
