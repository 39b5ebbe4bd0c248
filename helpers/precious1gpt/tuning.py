"""Optuna hyperparameter search for the Precious1GPT clock and its baselines.

The space is the paper's (Results and Methods): L1 and L2 regularisation, activation, dropout,
batch size, the number of hidden layers (depth) and their widths, the optimizer and the
learning rate (log-uniform around the paper's selected 0.00023). A study
is stored (SQLite in the chapter's output folder by default, or any Optuna storage URL such as
PostgreSQL), seeded (TPE) and pruned on the validation MAE per epoch: successive halving
(Optuna's multi-fidelity pruner, epochs as the resource) by default, Hyperband, or the median
rule (``benchmarks/pruner_comparison.py`` compares them at equal wall time). A new study
starts with the paper's selected configuration as its first trial. Rerunning resumes: trials
are added until the study holds the requested number, so several workers can share a study
(the command line is :mod:`helpers.book.tune`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from helpers.precious1gpt import baselines, transformer_clock
from helpers.precious1gpt.clock_problem import ClockProblem

# Categorical grids keep the paper's choices (0 regularisation, 128-2048-128) inside the space.
SPACE = {
    "l1": [0.0, 1e-6, 1e-5, 1e-4, 1e-3],
    "l2": [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2],
    "activation": ["ReLU", "ELU", "LeakyReLU", "SELU", "GELU"],
    "dropout": (0.0, 0.5),
    "batch_size": [32, 64, 96, 128, 256],
    "depth": [1, 2, 3, 4],
    "layer1": [64, 128, 256, 512],
    "layer2": [256, 512, 1024, 2048],
    "layer3": [64, 128, 256],
    "layer4": [32, 64, 128],
    "optimizer": ["Adam", "AdamW", "RMSprop"],
    "learning_rate": (1e-5, 1e-2),  # log scale
}
ELASTICNET_SPACE = {"alpha": (1e-4, 10.0), "l1_ratio": (0.05, 1.0)}


def suggest_network(trial) -> dict:
    """One configuration of the search space (``transformer_clock`` keys): the widths of the
    first ``depth`` hidden layers are searched, the others are not used."""
    hp = {name: trial.suggest_categorical(name, SPACE[name])
          for name in ("l1", "l2", "activation", "batch_size", "optimizer")}
    hp["dropout"] = trial.suggest_float("dropout", *SPACE["dropout"])
    hp["learning_rate"] = trial.suggest_float("learning_rate", *SPACE["learning_rate"], log=True)
    depth = trial.suggest_categorical("depth", SPACE["depth"])
    widths = [trial.suggest_categorical(f"layer{i}", SPACE[f"layer{i}"])
              for i in range(1, depth + 1)]
    hp["layers"] = "-".join(str(w) for w in widths)
    return hp


def paper_trial() -> dict:
    """The paper's selected configuration as trial parameters (enqueued first)."""
    hp = transformer_clock.PAPER_HYPERPARAMETERS
    widths = [int(w) for w in hp["layers"].split("-")]
    params = {k: hp[k] for k in ("l1", "l2", "activation", "batch_size", "optimizer", "dropout",
                                 "learning_rate")}
    return {**params, "depth": len(widths),
            **{f"layer{i}": w for i, w in enumerate(widths, start=1)}}


def network_hyperparameters(params: dict) -> dict:
    """Trial parameters (as Optuna stores them) back to a model configuration (a study from
    before depth was searched has three layers)."""
    depth = int(params.get("depth", 3))
    hp = {k: v for k, v in params.items() if not k.startswith("layer") and k != "depth"}
    hp["layers"] = "-".join(str(params[f"layer{i}"]) for i in range(1, depth + 1))
    return {**transformer_clock.PAPER_HYPERPARAMETERS, **hp}


# --- studies ---------------------------------------------------------------------------------

def default_storage(folder: Path | str) -> str:
    """An SQLite storage URL for the study file in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'optuna.sqlite3').resolve()}"


def rdb_storage(url: str):
    """An Optuna database storage with heartbeats: a trial whose worker died (no heartbeat for
    two minutes) is marked failed when the study is next opened and retried once with the same
    parameters, so a killed run resumes without losing the trial it was running."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=30, grace_period=120,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))


PRUNERS = ("successive-halving", "hyperband", "median")
MIN_EPOCHS = 5  # no trial is judged before this many epochs (the first rung)
REDUCTION = 3  # a third of the trials at a rung go on to the next


def pruner(name: str, max_epochs: int):
    """Optuna's successive halving over epochs (rungs at 5, 15, 45 epochs: a trial goes on
    only while its validation MAE is in the best third of the trials that reached the same
    rung, or the best so far while fewer than three have), Hyperband (several such brackets,
    some starting at 15 or 45 epochs), or the median rule (stop a trial whose validation MAE
    is above the median of earlier trials at the same epoch, after 5 epochs)."""
    import optuna

    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=MIN_EPOCHS,
                                                      reduction_factor=REDUCTION)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=MIN_EPOCHS, max_resource=max(max_epochs, MIN_EPOCHS),
            reduction_factor=REDUCTION)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=MIN_EPOCHS)
    raise ValueError(f"unknown pruner {name!r}; expected one of {PRUNERS}")


def open_study(name: str, storage: str | None, seed: int, enqueue: dict | None = None,
               pruning: str = "successive-halving", max_epochs: int = 60):
    """Create or resume a minimising study (seeded TPE, the ``pruning`` pruner over up to
    ``max_epochs`` epochs) in a database storage URL (``None``: in memory, for a study that
    lives only as long as one nested-CV fold); a new study gets ``enqueue`` (e.g. the paper's
    configuration) as its first trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name, storage=None if storage is None else rdb_storage(storage),
        direction="minimize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner(pruning, max_epochs))
    if enqueue is not None and not study.trials:
        study.enqueue_trial(enqueue)
    return study


def finished(study) -> int:
    """Trials that ran to the end or were pruned (failed and running ones do not count)."""
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


def run_trials(study, objective, n_trials: int | None = None, total: int | None = None):
    """Add ``n_trials`` trials, or (``total``) run until the study holds ``total`` finished
    trials, which is what resumes an interrupted study and lets several workers share one."""
    import optuna
    from optuna.trial import TrialState

    if total is not None:
        missing = max(0, total - finished(study))
        callback = optuna.study.MaxTrialsCallback(total, states=(TrialState.COMPLETE,
                                                                 TrialState.PRUNED))
        if missing:
            study.optimize(objective, n_trials=missing, callbacks=[callback])
    elif n_trials:
        study.optimize(objective, n_trials=n_trials)
    return study


def validation_mae(predicted, rows) -> float:
    """The objective every study minimises: MAE in years on the validation rows."""
    return float(np.mean(np.abs(np.asarray(predicted) - rows[transformer_clock.TARGET])))


def network_objective(problem: ClockProblem, kind: str):
    """Validation MAE (years) of a network trained on the fit split with the trial's
    configuration; reports each epoch's validation MAE for pruning."""
    import optuna

    fit_rows, valid_rows = problem.rows("fit"), problem.rows("valid")

    def objective(trial) -> float:
        hp = suggest_network(trial)
        stopped = []

        def report(epoch: int, maes: dict) -> bool:
            trial.report(maes["valid"], epoch)
            # asked once per step: successive halving and Hyperband record the rung on the
            # first call and answer False to a second one
            if trial.should_prune():
                stopped.append(epoch)
            return bool(stopped)

        result = transformer_clock.fit(kind, hp, fit_rows, valid_rows, problem.space.genes,
                                       problem.training, on_epoch=report,
                                       label=f"{kind} trial {trial.number}",
                                       record_train=False)
        if stopped:
            raise optuna.TrialPruned(f"stopped after epoch {stopped[0] + 1}")
        trial.set_user_attr("epochs", len(result.history))
        trial.set_user_attr("seconds", round(result.seconds, 1))
        # the restored weights are the best epoch's: their validation MAE is the history's
        return float(result.history["valid"].min())

    return objective


def elasticnet_objective(problem: ClockProblem, modality: str):
    """Validation MAE of an ElasticNet clock of one modality (alpha, l1_ratio searched)."""
    fit_rows = baselines.modality_rows(problem.rows("fit"), modality)
    valid_rows = baselines.modality_rows(problem.rows("valid"), modality)

    def objective(trial) -> float:
        alpha = trial.suggest_float("alpha", *ELASTICNET_SPACE["alpha"], log=True)
        l1_ratio = trial.suggest_float("l1_ratio", *ELASTICNET_SPACE["l1_ratio"])
        model = baselines.fit_elasticnet(fit_rows, problem.space, modality, alpha, l1_ratio,
                                         problem.training.seed)
        return validation_mae(baselines.predict_elasticnet(model, valid_rows), valid_rows)

    return objective


def study_name(model: str, problem: ClockProblem) -> str:
    """``<model>-<problem fingerprint>``: a study never mixes data or settings."""
    return f"{model}-{problem.fingerprint()}"


def search(problem: ClockProblem, model: str, storage: str | None, total: int,
           pruning: str = "successive-halving"):
    """Run (or resume) the study of ``model``: ``tabtransformer``, ``mlp`` or
    ``elasticnet-<modality>``, until it holds ``total`` finished trials."""
    if model in transformer_clock.KINDS:
        objective, enqueue = network_objective(problem, model), paper_trial()
    elif model.startswith("elasticnet-"):
        objective, enqueue = elasticnet_objective(problem, model.split("-", 1)[1]), None
    else:
        raise ValueError(f"unknown model {model!r}")
    study = open_study(study_name(model, problem), storage, problem.training.seed, enqueue,
                       pruning, problem.training.max_epochs)
    return run_trials(study, objective, total=total)
