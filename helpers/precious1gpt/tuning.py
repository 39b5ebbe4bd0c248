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

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from helpers.common import wording
from helpers.precious1gpt import transformer_clock

if TYPE_CHECKING:  # the problem's module (scikit-learn, scanpy) loads only where it is used,
    from helpers.precious1gpt.clock_problem import ClockProblem  # so a tuning worker starts fast

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
# benchmarks/pruner_comparison.py at the default cohort (2026-12-01): after 20 trials the median
# rule's best validation MAE was 4.40 years in 4.0 full fits' time, successive halving's 4.54
# in 4.2 and Hyperband's 6.10 in 5.0; the chapter keeps the better one
DEFAULT_PRUNER = "median"
MIN_TRIALS_FOR_IMPORTANCE = 10  # completed trials below which parameter importances are noise
MIN_EPOCHS = 5  # no trial is judged before this many epochs (the first rung)
REDUCTION = 3  # a third of the trials at a rung go on to the next


def pruner(name: str, max_epochs: int, min_epochs: int = MIN_EPOCHS,
           reduction: int = REDUCTION):
    """Optuna's successive halving over epochs (rungs at ``min_epochs`` x ``reduction`` ** k
    epochs, by default 5, 15, 45: a trial goes on only while its validation MAE is in the best
    ``1/reduction`` of the trials that reached the same rung, or the best so far while fewer
    than ``reduction`` have), Hyperband (several such brackets, some starting at later rungs),
    or the median rule (stop a trial whose validation MAE is above the median of earlier trials
    at the same epoch, after ``min_epochs`` epochs)."""
    import optuna

    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_epochs,
                                                      reduction_factor=reduction)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_epochs, max_resource=max(max_epochs, min_epochs),
            reduction_factor=reduction)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=min_epochs)
    raise ValueError(f"unknown pruner {name!r}; expected one of {PRUNERS}")


def rungs(max_epochs: int, min_epochs: int = MIN_EPOCHS, reduction: int = REDUCTION
          ) -> list[int]:
    """The epochs at which successive halving judges a trial (those below ``max_epochs``)."""
    out, epoch = [], min_epochs
    while epoch < max_epochs:
        out.append(epoch)
        epoch *= reduction
    return out


def describe_pruner(name: str, max_epochs: int, min_epochs: int = MIN_EPOCHS,
                    reduction: int = REDUCTION) -> str:
    """One sentence saying how the ``name`` pruner stops trials, with its epochs filled in."""
    fraction = {2: "half", 3: "third", 4: "quarter"}.get(reduction, f"1/{reduction}")
    if name == "successive-halving":
        epochs = rungs(max_epochs, min_epochs, reduction)
        if not epochs:
            return (f"Successive halving judges a trial first after {min_epochs} epochs; with "
                    f"at most {max_epochs} epochs per fit no trial reaches that, so none is "
                    "stopped early.")
        at = ", ".join(map(str, epochs[:-1])) + (" and " if len(epochs) > 1 else "") + \
            str(epochs[-1])
        return (f"Successive halving stops unpromising trials early: each trial is judged on "
                f"its validation MAE after {at} epochs and goes on only while it is among the "
                f"best {fraction} of the trials that reached the same epoch (the best so far, "
                f"while fewer than {reduction} have; Optuna's `SuccessiveHalvingPruner`, epochs "
                "as the resource), so only configurations that keep up are trained longer.")
    if name == "hyperband":
        starts = rungs(max_epochs, min_epochs, reduction) or [min_epochs]
        return (f"Hyperband stops unpromising trials early: it runs successive halving (keep "
                f"the best {fraction} at each rung) in {len(starts)} bracket(s) whose first "
                f"rungs lie at {', '.join(map(str, starts))} epochs, so that some "
                "configurations get a longer start before they are judged (Optuna's "
                "`HyperbandPruner`).")
    if name == "median":
        return (f"The median rule stops a trial whose validation MAE, after at least "
                f"{min_epochs} epochs, is worse than the median of earlier trials at the same "
                "epoch (Optuna's `MedianPruner`).")
    raise ValueError(f"unknown pruner {name!r}; expected one of {PRUNERS}")


def trial_sampler(seed: int, first: dict | None = None):
    """Optuna's TPE sampler reseeded at each trial from ``seed`` and the trial's number: the
    storage hands every trial a distinct number, so a resumed study or workers sharing one
    never draw the same configuration, and a study run alone is still reproducible. ``first``
    (e.g. the paper's configuration) is the configuration of trial 0, whichever worker gets it:
    no enqueued trial that two workers could both take."""
    import optuna

    class TrialSeededTPESampler(optuna.samplers.TPESampler):
        def before_trial(self, study, trial):
            state = np.random.SeedSequence([seed, trial.number]).generate_state(1)[0]
            self._rng.rng.seed(int(state))
            self._random_sampler._rng.rng.seed(int(state))
            super().before_trial(study, trial)

        def sample_independent(self, study, trial, name, distribution):
            if first is not None and trial.number == 0 and name in first:
                return first[name]
            return super().sample_independent(study, trial, name, distribution)

    return TrialSeededTPESampler(seed=seed)


def named_storage(url: str):
    """:func:`rdb_storage`, with an unusable database (a damaged or foreign SQLite file, a
    server that refuses) named in the error."""
    try:
        return rdb_storage(url)
    except Exception as err:
        if type(err).__name__ in _CREATION_RACES:
            raise
        shown = url.split("@")[-1]  # no password in the message
        raise ValueError(f"{shown}: not a usable Optuna storage ({type(err).__name__}: "
                         f"{str(err).splitlines()[0]})") from None


# Errors two processes creating one study (or one SQLite file) at the same moment can meet.
_CREATION_RACES = ("IntegrityError", "DuplicatedStudyError", "OperationalError")
CREATION_ATTEMPTS = 8


def open_study(name: str, storage: str | None, seed: int, enqueue: dict | None = None,
               pruning=DEFAULT_PRUNER, max_epochs: int = 60):
    """Create or resume a minimising study (TPE reseeded per trial, :func:`trial_sampler`;
    ``pruning``: a name of :data:`PRUNERS` over up to ``max_epochs`` epochs, or an Optuna
    pruner) in a database storage URL (``None``: in memory, for a study that lives only as
    long as one nested-CV fold). ``enqueue`` (e.g. the paper's configuration) is trial 0's
    configuration (:func:`trial_sampler`); a process that finds the study created loads it, so
    workers starting together neither fail nor run the first configuration twice."""
    import time

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = {"study_name": name, "direction": "minimize",
                "sampler": trial_sampler(seed, enqueue),
                "pruner": pruner(pruning, max_epochs) if isinstance(pruning, str) else pruning}
    for attempt in range(CREATION_ATTEMPTS):
        try:
            backend = None if storage is None else named_storage(storage)
            try:
                return optuna.create_study(storage=backend, **settings)
            except optuna.exceptions.DuplicatedStudyError:
                return optuna.load_study(storage=backend, study_name=name,
                                         sampler=settings["sampler"], pruner=settings["pruner"])
        except Exception as err:
            if type(err).__name__ not in _CREATION_RACES or attempt == CREATION_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def finished(study) -> int:
    """Trials that ran to the end or were pruned (failed and running ones do not count)."""
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


def importance_refusal(study) -> str | None:
    """Why a study's parameter importances are not reported (fewer than
    ``MIN_TRIALS_FOR_IMPORTANCE`` completed trials: too few to rank anything), or None."""
    from optuna.trial import TrialState

    complete = sum(t.state == TrialState.COMPLETE for t in study.trials)
    return wording.too_few(complete, MIN_TRIALS_FOR_IMPORTANCE, "completed trials")


class SurplusTrial(Exception):
    """A trial asked for after the study already held or ran its target number: not run."""


def _within(objective, total: int, surplus: set):
    """``objective`` for the first ``total`` trials of the study (counting finished and
    running ones, in the storage's trial order); a later trial is refused as surplus (its
    number added to ``surplus``), so workers sharing a study stop at the target exactly."""
    from optuna.trial import TrialState

    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)

    def wrapped(trial):
        earlier = sum(t.number < trial.number and t.state in counted
                      for t in trial.study.get_trials(deepcopy=False))
        if earlier >= total:
            surplus.add(trial.number)
            trial.set_user_attr("surplus", True)
            trial.study.stop()
            raise SurplusTrial(f"trial {trial.number}: the study already holds or runs "
                               f"{total} trials")
        return objective(trial)

    return wrapped


class _QuietSurplus(logging.Filter):
    """Drops Optuna's 'Trial n failed' lines for surplus trials (they were never run)."""

    def __init__(self, surplus: set):
        super().__init__()
        self.surplus = surplus

    def filter(self, record):
        return not any(record.getMessage().startswith(f"Trial {n} failed")
                       for n in self.surplus)


def run_trials(study, objective, n_trials: int | None = None, total: int | None = None):
    """Add ``n_trials`` trials, or (``total``) run until the study holds ``total`` finished
    trials, which is what resumes an interrupted study and lets several workers share one
    (stopping at ``total`` exactly; a trial claimed beyond it is recorded as failed, unrun,
    with the user attribute ``surplus``)."""
    if total is not None:
        surplus: set = set()
        handlers = logging.getLogger("optuna").handlers
        quiet = _QuietSurplus(surplus)
        for handler in handlers:
            handler.addFilter(quiet)
        try:
            while not surplus and (missing := total - finished(study)) > 0:
                study.optimize(_within(objective, total, surplus), n_trials=missing,
                               catch=(SurplusTrial,))
        finally:
            for handler in handlers:
                handler.removeFilter(quiet)
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
            # the step is the number of epochs done, so the rung at 5 judges 5 epochs
            trial.report(maes["valid"], epoch + 1)
            # asked once per step: successive halving and Hyperband record the rung on the
            # first call and answer False to a second one
            if trial.should_prune():
                stopped.append(epoch + 1)
            return bool(stopped)

        result = transformer_clock.fit(kind, hp, fit_rows, valid_rows, problem.space.genes,
                                       problem.training, on_epoch=report,
                                       label=f"{kind} trial {trial.number}",
                                       record_train=False)
        if stopped:
            raise optuna.TrialPruned(f"stopped after epoch {stopped[0]}")
        trial.set_user_attr("epochs", len(result.history))
        trial.set_user_attr("seconds", round(result.seconds, 1))
        # the restored weights are the best epoch's: their validation MAE is the history's
        return float(result.history["valid"].min())

    return objective


def elasticnet_objective(problem: ClockProblem, modality: str):
    """Validation MAE of an ElasticNet clock of one modality (alpha, l1_ratio searched)."""
    from helpers.precious1gpt import baselines

    fit_rows = baselines.modality_rows(problem.rows("fit"), modality)
    valid_rows = baselines.modality_rows(problem.rows("valid"), modality)

    def objective(trial) -> float:
        alpha = trial.suggest_float("alpha", *ELASTICNET_SPACE["alpha"], log=True)
        l1_ratio = trial.suggest_float("l1_ratio", *ELASTICNET_SPACE["l1_ratio"])
        model = baselines.fit_elasticnet(fit_rows, problem.space, modality, alpha, l1_ratio,
                                         problem.training.seed)
        return validation_mae(baselines.predict_elasticnet(model, valid_rows), valid_rows)

    return objective


def study_name(model: str, problem: ClockProblem, pruning: str = DEFAULT_PRUNER) -> str:
    """``<model>-<problem fingerprint>``, with ``-<pruner>`` for a network study run under
    another pruner than the default: a study never mixes data, settings or pruning rules."""
    rule = "" if pruning == DEFAULT_PRUNER or model not in transformer_clock.KINDS else \
        f"-{pruning}"
    return f"{model}-{problem.fingerprint()}{rule}"


def search(problem: ClockProblem, model: str, storage: str | None, total: int,
           pruning: str = DEFAULT_PRUNER):
    """Run (or resume) the study of ``model``: ``tabtransformer``, ``mlp`` or
    ``elasticnet-<modality>``, until it holds ``total`` finished trials."""
    if model in transformer_clock.KINDS:
        objective, enqueue = network_objective(problem, model), paper_trial()
    elif model.startswith("elasticnet-"):
        objective, enqueue = elasticnet_objective(problem, model.split("-", 1)[1]), None
    else:
        raise ValueError(f"unknown model {model!r}")
    study = open_study(study_name(model, problem, pruning), storage, problem.training.seed,
                       enqueue, pruning, problem.training.max_epochs)
    return run_trials(study, objective, total=total)
