"""Multi-fidelity pruners (successive halving, Hyperband) against the median pruner for the
Precious1GPT clock's search, each at equal wall time.

Run: ``python benchmarks/pruner_comparison.py`` (``--profile default`` is what the chapter
searches; ``--profile quick`` for a smoke run; ``--model mlp``; ``--trials 20``;
``--candidates successive-halving:5:3 hyperband:5:3``, each ``pruner:min_epochs:reduction``).
In one process, on the chapter's simulated clock problem and seed:

1. one full fit of the paper's configuration (up to ``max_epochs`` with early stopping): the
   unit of cost;
2. for each candidate, a ``--trials`` study (in memory, TPE seeded as in the chapter, the
   paper's configuration first): its wall time ``W`` and best validation MAE;
3. one study with the median pruner, same sampler and seed, run for the longest ``W``; its best
   validation MAE is read at each candidate's ``W`` from the trials finished by then (equal
   wall time), and after its first ``--trials`` trials (equal trials, what the chapter runs).

It prints each study's wall time in full fits, its finished and pruned trials, the epochs it
trained and its best validation MAE (years), and for each candidate whether it or the median
pruner found the lower MAE at equal wall time.
"""

from __future__ import annotations

import argparse
import time

import optuna

from helpers.book.run import load_profile
from helpers.precious1gpt import clock_problem, transformer_clock, tuning


def study_summary(study, seconds: float, unit: float) -> dict:
    """Wall time (s and in full fits), trials by state, epochs trained, best validation MAE."""
    states = [t.state for t in study.trials]
    return {"wall_s": round(seconds, 1), "full_fits": round(seconds / unit, 2),
            "trials": len(states),
            "complete": sum(s == optuna.trial.TrialState.COMPLETE for s in states),
            "pruned": sum(s == optuna.trial.TrialState.PRUNED for s in states),
            "epochs": sum(len(t.intermediate_values) for t in study.trials),
            "best_valid_mae": round(study.best_value, 3)}


def parse_candidate(text: str) -> tuple[str, int, int]:
    """``pruner:min_epochs:reduction`` (e.g. ``successive-halving:5:3``)."""
    name, min_epochs, reduction = (text.split(":") + [tuning.MIN_EPOCHS, tuning.REDUCTION])[:3]
    if name not in tuning.PRUNERS or name == "median":
        raise SystemExit(f"--candidates {text!r}: the pruner must be one of "
                         f"{[p for p in tuning.PRUNERS if p != 'median']}")
    return name, int(min_epochs), int(reduction)


def best_by(history: list[tuple[float, float]], seconds: float) -> float:
    """The lowest value among trials finished within ``seconds`` (NaN when none had)."""
    values = [v for t, v in history if t <= seconds]
    return min(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="tabtransformer", choices=transformer_clock.KINDS)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--candidates", nargs="+",
                        default=[f"successive-halving:{tuning.MIN_EPOCHS}:{tuning.REDUCTION}"])
    args = parser.parse_args()
    candidates = [parse_candidate(c) for c in args.candidates]
    chapter = load_profile(args.profile)["chapters"]["p1_transformer_clock"]
    problem = clock_problem.simulated_problem(
        args.profile, args.seed, max_epochs=chapter.get("max_epochs", 60),
        patience=chapter.get("patience", 8), progress=False)
    max_epochs = problem.training.max_epochs
    fit_rows, valid_rows = problem.rows("fit"), problem.rows("valid")
    start = time.perf_counter()
    full = transformer_clock.fit(args.model, {}, fit_rows, valid_rows, problem.space.genes,
                                 problem.training, record_train=False)
    unit = time.perf_counter() - start
    print(f"one full fit ({args.profile}, {args.model}, paper configuration): {unit:.1f} s, "
          f"{len(full.history)} epochs, validation MAE {full.history['valid'].min():.3f}",
          flush=True)
    objective = tuning.network_objective(problem, args.model)
    rows = {}
    for name, min_epochs, reduction in candidates:
        label = f"{name} (first rung {min_epochs} epochs, reduction {reduction})"
        study = tuning.open_study(label, None, args.seed, tuning.paper_trial(),
                                  tuning.pruner(name, max_epochs, min_epochs, reduction))
        start = time.perf_counter()
        study.optimize(objective, n_trials=args.trials)
        rows[label] = study_summary(study, time.perf_counter() - start, unit)
        print(f"{label}:", rows[label], flush=True)
    budget = max(r["wall_s"] for r in rows.values())
    history: list[tuple[float, float]] = []
    median = tuning.open_study("median", None, args.seed, tuning.paper_trial(), "median",
                               max_epochs)
    start = time.perf_counter()

    finished_at: list[float] = []

    def record(study, trial) -> None:
        finished_at.append(time.perf_counter() - start)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            history.append((finished_at[-1], trial.value))

    median.optimize(objective, timeout=budget, callbacks=[record])
    print(f"median (run for {budget:.0f} s):",
          study_summary(median, time.perf_counter() - start, unit), flush=True)
    if len(finished_at) >= args.trials:  # what the chapter runs: a fixed number of trials
        first = finished_at[args.trials - 1]
        print(f"median, its first {args.trials} trials: {first:.1f} s = {first / unit:.2f} full "
              f"fits, best validation MAE {best_by(history, first):.3f}", flush=True)
    print()
    for label, row in rows.items():
        at_equal = best_by(history, row["wall_s"])
        mine = row["best_valid_mae"]
        better = ("neither (equal MAE)" if mine == round(at_equal, 3) else
                  f"{label} is better" if mine < at_equal else "the median pruner is better")
        print(f"{args.profile} {args.model}: {args.trials} trials with {label} cost "
              f"{row['full_fits']:.1f} full fits; best validation MAE "
              f"{row['best_valid_mae']:.3f} vs {at_equal:.3f} (median pruner, "
              f"{sum(t <= row['wall_s'] for t, _ in history)} finished trials in the same "
              f"{row['wall_s']:.0f} s): {better}")


if __name__ == "__main__":
    main()
