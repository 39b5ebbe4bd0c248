"""Cross-validation of every clock kind on the same folds: the TabTransformer, its plain MLP,
an ElasticNet per modality and the mean-age predictor, with out-of-fold predictions for every
sample in every repeat and metrics per fold.

Each fold is a clock problem of its own (:func:`helpers.precious1gpt.clock_problem.clock_problem`
with the fold's held-out samples as its test part): the gene scaling, the selected genes, the
validation split that stops training early, and (with ``tune_trials``) the hyperparameter search
are all fitted on the fold's training part, so no held-out sample reaches a fit (nested
cross-validation when tuning). Use :func:`helpers.common.splits.repeated_folds` for the folds:
stratified by any column, grouped by donor, repeated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.common import metrics
from helpers.precious1gpt import baselines, multimodal, transformer_clock, tuning
from helpers.precious1gpt.clock_problem import ClockProblem, clock_problem, prediction_frame

MODELS = ("tabtransformer", "mlp", "elasticnet", "mean_age")
LABELS = {"tabtransformer": "TabTransformer", "mlp": "MLP",
          "elasticnet": "ElasticNet per modality", "mean_age": "mean age"}


@dataclass
class CrossValidation:
    """Out-of-fold predictions (one row per sample, repeat and model), per-fold metrics and
    what each fold chose (hyperparameters, epochs), with each fold's training samples."""

    predictions: pd.DataFrame
    per_fold: pd.DataFrame
    choices: pd.DataFrame
    training_sets: dict = field(default_factory=dict)  # (repeat, fold) -> training sample ids

    def summary(self, metric_names=("MAE", "RMSE", "R2", "pearson_r", "spearman_rho")
                ) -> pd.DataFrame:
        """Mean and sd over folds and repeats per model and modality."""
        return metrics.summarise_folds(self.per_fold, by=("model", "modality"),
                                       metrics=metric_names)


def _network(problem: ClockProblem, kind: str, hp: dict | None, tune_trials: int,
             storage: str | None) -> tuple[np.ndarray, dict]:
    if tune_trials:
        study = tuning.search(problem, kind, storage, tune_trials)
        hp = tuning.network_hyperparameters(study.best_params)
    result = transformer_clock.fit(kind, hp or {}, problem.rows("fit"), problem.rows("valid"),
                                   problem.space.genes, problem.training,
                                   label=f"{kind} {problem.settings.get('fold_label', '')}")
    predicted = transformer_clock.predict(result.model, problem.rows("test"))
    return predicted, {**result.hyperparameters, "epochs": len(result.history),
                       "best_epoch": result.best_epoch}


def _elasticnet(problem: ClockProblem, hp: dict | None, tune_trials: int,
                storage: str | None) -> tuple[np.ndarray, dict]:
    """One ElasticNet per modality: tuned on the fold's validation split (``tune_trials``),
    given penalties (``hp``: modality -> alpha, l1_ratio), or the penalty chosen by an inner
    cross-validation of the fold's training part; each refitted on the whole training part."""
    train, test = problem.rows("train"), problem.rows("test")
    predicted = pd.Series(np.nan, index=test.index)
    chosen = {}
    for modality in problem.space.modalities:
        rows = baselines.modality_rows(test, modality)
        if rows.empty:
            continue
        params = (hp or {}).get(modality)
        if tune_trials:
            study = tuning.search(problem, f"elasticnet-{modality}", storage, tune_trials)
            params = study.best_params
        if params is None:
            model = baselines.fit_elasticnet_cv(train, problem.space, modality,
                                                seed=problem.training.seed)
            chosen[modality] = {"alpha": float(model.alpha_), "l1_ratio": model.l1_ratio,
                                "chosen_by": "inner CV"}
        else:
            model = baselines.fit_elasticnet(train, problem.space, modality, params["alpha"],
                                             params["l1_ratio"], problem.training.seed)
            chosen[modality] = {**params, "chosen_by": "study" if tune_trials else "given"}
        predicted.loc[rows.index] = baselines.predict_elasticnet(model, rows)
    return predicted.to_numpy(), chosen


def predict_fold(problem: ClockProblem, model: str, hyperparameters: dict | None = None,
                 tune_trials: int = 0, storage: str | None = None) -> tuple[np.ndarray, dict]:
    """Held-out predictions of one model kind on one fold's problem, and what it chose."""
    if model in transformer_clock.KINDS:
        return _network(problem, model, hyperparameters, tune_trials, storage)
    if model == "elasticnet":
        return _elasticnet(problem, hyperparameters, tune_trials, storage)
    if model == "mean_age":
        predicted = baselines.mean_age(problem.rows("train"), problem.rows("test"))
        return predicted, {}
    raise ValueError(f"unknown model {model!r}; choose from {MODELS}")


def cross_validate(data: multimodal.ClockData, folds: pd.DataFrame | pd.Series,
                   models=("elasticnet", "mean_age"), hyperparameters: dict | None = None,
                   tune_trials: int = 0, seed: int = 0, max_epochs: int = 100,
                   patience: int = 10, valid_size: float = 0.1, group: str | None = None,
                   valid_stratify: tuple[str, ...] = ("tissue", "modality"),
                   n_features: int | None = None, workdir: Path | None = None,
                   progress: bool = False, storage: str | None = None,
                   target: str | None = None) -> CrossValidation:
    """Every model kind in ``models`` on every fold of every repeat of ``folds`` (samples x
    repeats, fold numbers; a Series is one repeat). ``hyperparameters`` maps a model kind to
    its settings (networks: ``transformer_clock`` keys, default the paper's; ElasticNet:
    modality -> alpha, l1_ratio, default an inner CV); ``tune_trials`` > 0 searches them
    inside each training fold instead (nested CV; in-memory studies unless ``storage``).
    ``target`` defaults to the data's."""
    folds = folds.to_frame(0) if isinstance(folds, pd.Series) else folds
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {MODELS}")
    missing = data.obs.index.difference(folds.index)
    if len(missing):
        raise ValueError(f"{len(missing)} samples have no fold (e.g. {list(missing[:3])})")
    rows, choices, training_sets = [], [], {}
    for repeat in folds.columns:
        for fold in sorted(folds[repeat].unique()):
            test = folds.index[folds[repeat].to_numpy() == fold]
            about = {"cross_validation": True, "repeat": int(repeat),
                     "fold_label": f"repeat {repeat} fold {fold}"}
            problem = clock_problem(data, seed, valid_size=valid_size, max_epochs=max_epochs,
                                    patience=patience, workdir=workdir, progress=progress,
                                    about=about, test=test, group=group,
                                    valid_stratify=valid_stratify, n_features=n_features,
                                    target=target)
            training_sets[(int(repeat), int(fold))] = problem.train
            for model in models:
                predicted, chosen = predict_fold(problem, model,
                                                 (hyperparameters or {}).get(model),
                                                 tune_trials, storage)
                frame = prediction_frame(problem, problem.test, predicted)
                rows.append(frame.assign(model=LABELS[model], repeat=int(repeat),
                                         fold=int(fold)))
                choices.append({"model": LABELS[model], "repeat": int(repeat),
                                "fold": int(fold), "genes": len(problem.space.genes),
                                "train": len(problem.train), "valid": len(problem.valid),
                                "test": len(problem.test),
                                "chosen": json.dumps(chosen, default=str)})
    predictions = pd.concat(rows).rename_axis("sample").reset_index()
    return CrossValidation(predictions, per_fold_metrics(predictions), pd.DataFrame(choices),
                           training_sets)


def per_fold_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """Metrics of each model on each fold, per modality and, with several, combined."""
    parts = [predictions]
    if predictions["modality"].nunique() > 1:
        parts.append(predictions.assign(modality="combined"))
    return metrics.fold_metrics(pd.concat(parts), by=("model", "modality", "repeat", "fold"))


def out_of_fold(predictions: pd.DataFrame, model: str) -> pd.DataFrame:
    """One model's out-of-fold predictions averaged over repeats, one row per sample (with the
    spread over repeats): what to plot against age."""
    part = predictions[predictions["model"] == LABELS.get(model, model)]
    if part.empty:
        raise ValueError(f"no predictions of model {model!r}")
    grouped = part.groupby("sample", sort=False)
    out = grouped[["modality", "tissue", "age", "age_exact"]].first()
    out["predicted"] = grouped["predicted"].mean()
    out["sd_over_repeats"] = grouped["predicted"].std(ddof=1)
    out["repeats"] = grouped.size()
    return out
