"""Evaluating the Precious1GPT clock the paper's way (Table 1, Supplementary Tables 1 and 2) and
against honest baselines on the same splits."""

from __future__ import annotations

import pandas as pd

from helpers.common import metrics, splits
from helpers.precious1gpt import baselines, crossval, transformer_clock
from helpers.precious1gpt.clock_problem import ClockProblem, prediction_frame


def holdout_predictions(problem: ClockProblem, predicted) -> pd.DataFrame:
    """Hold-out predictions beside labels, exact ages, tissue and modality."""
    return prediction_frame(problem, problem.test, predicted)


def fit_final(problem: ClockProblem, kind: str, hp: dict, label: str | None = None):
    """Train on the fit split (early stopping on valid), recording the hold-out MAE per epoch
    for the learning curve (Supplementary Figure 1); returns the fit and hold-out predictions."""
    test = problem.rows("test")
    result = transformer_clock.fit(kind, hp, problem.rows("fit"), problem.rows("valid"),
                                   problem.space.genes, problem.training, monitor={"test": test},
                                   label=label or f"{kind} final")
    return result, holdout_predictions(problem, transformer_clock.predict(result.model, test))


def cross_validate(problem: ClockProblem, kind: str, hp: dict, n_folds: int = 5
                   ) -> list[pd.DataFrame]:
    """Supplementary Table 1: folds stratified by tissue and modality; each fold is a clock
    problem of its own (gene scaling refitted, validation split carved from its training part,
    :func:`helpers.precious1gpt.crossval.cross_validate`) and reports Table 1's metrics on its
    test part."""
    training = problem.training
    group = problem.settings.get("group")  # the hold-out's grouping (donor) holds for folds too
    folds = splits.cv_folds(problem.data.obs, n_folds, by=("tissue", "modality"),
                            seed=training.seed, group=group)
    cv = crossval.cross_validate(problem.data, folds, models=(kind,), hyperparameters={kind: hp},
                                 seed=training.seed, max_epochs=training.max_epochs,
                                 patience=training.patience,
                                 valid_size=problem.settings["valid_size"], group=group,
                                 workdir=training.workdir, progress=training.progress,
                                 target=problem.settings["target"])
    return [metrics.modality_table(part.set_index("sample"))
            for _, part in cv.predictions.groupby("fold", sort=True)]


def elasticnet_predictions(problem: ClockProblem, params: dict[str, dict]) -> pd.DataFrame:
    """Hold-out predictions of one ElasticNet clock per modality (``params``: modality ->
    alpha, l1_ratio), each trained on the fit split of its modality."""
    test = problem.rows("test")
    predicted = pd.Series(index=test.index, dtype=float)
    for modality, p in params.items():
        model = baselines.fit_elasticnet(problem.rows("fit"), problem.space, modality,
                                         p["alpha"], p["l1_ratio"], problem.training.seed)
        rows = baselines.modality_rows(test, modality)
        predicted.loc[rows.index] = baselines.predict_elasticnet(model, rows)
    return holdout_predictions(problem, predicted.to_numpy())


def mean_age_predictions(problem: ClockProblem) -> pd.DataFrame:
    """Hold-out predictions of the mean-age predictor (per modality, from the fit split)."""
    return holdout_predictions(problem, baselines.mean_age(problem.rows("fit"),
                                                           problem.rows("test")))


def comparison(predictions: dict[str, pd.DataFrame], truth: str = "age") -> pd.DataFrame:
    """One row per model x modality (and combined): MAE, RMSE, R2, MdAE on the hold-out."""
    rows = []
    for model, frame in predictions.items():
        table = metrics.modality_table(frame, truth=truth)
        for modality in table.columns:
            rows.append({"model": model, "modality": modality,
                         **table[modality].drop("n").astype(float).to_dict(),
                         "n": int(table.loc["n", modality])})
    return pd.DataFrame(rows)


def winners(table: pd.DataFrame, metric: str = "MAE") -> pd.Series:
    """Per modality, the model with the lowest ``metric``."""
    return table.loc[table.groupby("modality")[metric].idxmin()].set_index("modality")["model"]
