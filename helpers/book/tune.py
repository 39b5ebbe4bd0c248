"""A tuning worker: adds trials to the transformer-clock chapter's Optuna study (or a shared
one) for a profile and seed, so that several processes or machines can share a study::

    python -m helpers.book.tune --profile default --seed 0 --model tabtransformer \\
        --trials 20 --storage postgresql://user:pass@host/db

It lives with the book because it reads the chapter's parameter profile; the search itself is
:func:`helpers.precious1gpt.tuning.search`.
"""

from __future__ import annotations

import argparse
import sys

from helpers.book.run import load_profile
from helpers.precious1gpt.clock_problem import output_folder, simulated_problem
from helpers.precious1gpt.tuning import DEFAULT_PRUNER, PRUNERS, default_storage, finished, search


def main(argv: list[str] | None = None) -> int:
    """Command line: a worker adding trials to a shared study (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m helpers.book.tune",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="tabtransformer",
                        help="tabtransformer, mlp, elasticnet-methylation, "
                             "elasticnet-expression")
    parser.add_argument("--trials", type=int, required=True,
                        help="the number of finished trials the study should hold")
    parser.add_argument("--max-epochs", type=int,
                        help="default: the chapter's value in the profile")
    parser.add_argument("--patience", type=int, help="default: the chapter's value in the profile")
    parser.add_argument("--storage", help="Optuna storage URL (default: the chapter's SQLite)")
    parser.add_argument("--pruner", default=DEFAULT_PRUNER, choices=PRUNERS,
                        help=f"stops weak trials early (the chapter's: {DEFAULT_PRUNER})")
    args = parser.parse_args(argv)
    chapter = load_profile(args.profile)["chapters"].get("p1_transformer_clock") or {}
    problem = simulated_problem(args.profile, args.seed,
                                max_epochs=args.max_epochs or chapter.get("max_epochs", 60),
                                patience=args.patience or chapter.get("patience", 8),
                                workdir=output_folder(args.profile, args.seed) / "training")
    storage = args.storage or default_storage(output_folder(args.profile, args.seed))
    study = search(problem, args.model, storage, args.trials, args.pruner)
    print(f"study {study.study_name}: {finished(study)} finished trials, best value "
          f"{study.best_value:.3f} with {study.best_params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
