"""Successive halving against the median pruner for the Precious1GPT clock's search, at equal
wall time (``--pruner hyperband`` for Hyperband instead).

Run: ``python benchmarks/pruner_comparison.py`` (``--profile default`` is what the chapter
searches; ``--profile quick`` for a smoke run; ``--model mlp``; ``--trials 20``). In one
process, on the chapter's simulated clock problem and seed:

1. one full fit of the paper's configuration (up to ``max_epochs`` with early stopping): the
   unit of cost;
2. a ``--trials`` study with successive halving (in memory, TPE seeded as in the chapter, the
   paper's configuration first): its wall time ``W`` and best validation MAE;
3. a study with today's median pruner, same sampler and seed, stopped after ``W`` seconds
   (equal wall time): its trials and best validation MAE.

It prints each study's wall time in full fits, its finished and pruned trials and its best
validation MAE (years), and which pruner found the lower MAE at equal wall time.
"""

from __future__ import annotations

import argparse
import time

import optuna

from helpers.book.run import load_profile
from helpers.precious1gpt import clock_problem, transformer_clock, tuning


def study_summary(study, seconds: float, unit: float) -> dict:
    """Wall time (s and in full fits), trials by state, best validation MAE."""
    states = [t.state for t in study.trials]
    return {"wall_s": round(seconds, 1), "full_fits": round(seconds / unit, 2),
            "trials": len(states),
            "complete": sum(s == optuna.trial.TrialState.COMPLETE for s in states),
            "pruned": sum(s == optuna.trial.TrialState.PRUNED for s in states),
            "best_valid_mae": round(study.best_value, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="tabtransformer", choices=transformer_clock.KINDS)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pruner", default="successive-halving",
                        choices=[p for p in tuning.PRUNERS if p != "median"])
    args = parser.parse_args()
    chapter = load_profile(args.profile)["chapters"]["p1_transformer_clock"]
    problem = clock_problem.simulated_problem(
        args.profile, args.seed, max_epochs=chapter.get("max_epochs", 60),
        patience=chapter.get("patience", 8), progress=False)
    fit_rows, valid_rows = problem.rows("fit"), problem.rows("valid")
    genes = problem.space.genes
    start = time.perf_counter()
    full = transformer_clock.fit(args.model, {}, fit_rows, valid_rows, genes, problem.training,
                                 record_train=False)
    unit = time.perf_counter() - start
    print(f"one full fit ({args.profile}, {args.model}, paper configuration): {unit:.1f} s, "
          f"{len(full.history)} epochs, validation MAE {full.history['valid'].min():.3f}",
          flush=True)
    objective = tuning.network_objective(problem, args.model)
    rows = {}
    start = time.perf_counter()
    multi = tuning.open_study(args.pruner, None, args.seed, tuning.paper_trial(),
                              args.pruner, problem.training.max_epochs)
    multi.optimize(objective, n_trials=args.trials)
    budget = time.perf_counter() - start
    rows[args.pruner] = study_summary(multi, budget, unit)
    print(f"{args.pruner}:", rows[args.pruner], flush=True)
    start = time.perf_counter()
    median = tuning.open_study("median", None, args.seed, tuning.paper_trial(), "median",
                               problem.training.max_epochs)
    median.optimize(objective, timeout=budget)
    rows["median"] = study_summary(median, time.perf_counter() - start, unit)
    print("median (same wall time):", rows["median"], flush=True)
    better = min(rows, key=lambda k: rows[k]["best_valid_mae"])
    print(f"\n{args.profile} {args.model}: {args.trials} trials with {args.pruner} cost "
          f"{rows[args.pruner]['full_fits']:.1f} full fits; best validation MAE "
          f"{rows[args.pruner]['best_valid_mae']:.3f} ({args.pruner}) vs "
          f"{rows['median']['best_valid_mae']:.3f} (median pruner, "
          f"{rows['median']['trials']} trials in the same wall time): {better} is better")


if __name__ == "__main__":
    main()
