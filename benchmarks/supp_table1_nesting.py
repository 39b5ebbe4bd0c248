"""How optimistic is Supplementary Table 1 when its folds reuse a configuration searched once?

The transformer chapter searches the configuration on the hold-out problem's training part and
then cross-validates it; every fold's test samples were part of that search. This script runs
both on the same donor-grouped folds of a profile's simulated cohorts: (a) the reused
configuration, searched once on all samples outside the hold-out; (b) a nested search, the
same number of trials inside each training fold. It prints the mean fold MAE of each and the
difference (reused - nested; negative: reuse looks better than it is).
Run: ``python benchmarks/supp_table1_nesting.py [--profile quick] [--trials 4] [--folds 3]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from helpers.common import splits
from helpers.precious1gpt import clock_problem, crossval, tuning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        problem = clock_problem.simulated_problem(args.profile, args.seed, max_epochs=args.epochs,
                                                  patience=3, workdir=Path(work),
                                                  progress=False)
        study = tuning.search(problem, "tabtransformer", None, args.trials)
        best = tuning.network_hyperparameters(study.best_params)
        folds = splits.cv_folds(problem.data.obs, args.folds, by=("tissue", "modality"),
                                seed=args.seed, group="donor")
        common = dict(seed=args.seed, max_epochs=args.epochs, patience=3, group="donor",
                      workdir=Path(work), target=problem.settings["target"])
        reused = crossval.cross_validate(problem.data, folds, models=("tabtransformer",),
                                         hyperparameters={"tabtransformer": best}, **common)
        nested = crossval.cross_validate(problem.data, folds, models=("tabtransformer",),
                                         tune_trials=args.trials, **common)
    mae = {}
    for name, cv in (("reused", reused), ("nested", nested)):
        frame = cv.predictions
        mae[name] = np.mean([np.abs(p["predicted"] - p["age"]).mean()
                             for _, p in frame.groupby("fold")])
    print(f"profile {args.profile}, {args.folds} donor-grouped folds, {args.trials} trials")
    print(f"mean fold MAE, configuration searched once (reused): {mae['reused']:.3f} years")
    print(f"mean fold MAE, searched inside each fold (nested):   {mae['nested']:.3f} years")
    print(f"reused - nested: {mae['reused'] - mae['nested']:+.3f} years")
    chosen = [json.loads(c) for c in nested.choices["chosen"]]
    same = sum(all(c.get(k) == v for k, v in best.items() if k in c) for c in chosen)
    print(f"folds whose nested search chose the reused configuration: {same} of {len(chosen)}")


if __name__ == "__main__":
    main()
