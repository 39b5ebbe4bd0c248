"""The paper's evaluation splits: an 80/20 shuffle split stratified by tissue (Table 1,
Supplementary Table 2) and 5-fold cross-validation stratified by tissue and modality
(Supplementary Table 1). Both take the chapter's seed and return sample ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split


def strata(obs: pd.DataFrame, by: tuple[str, ...]) -> pd.Series:
    """One label per sample joining the ``by`` columns (e.g. ``Blood|methylation``)."""
    missing = [c for c in by if c not in obs.columns]
    if missing:
        raise ValueError(f"sample table lacks field(s) {missing}")
    return obs[list(by)].astype(str).agg("|".join, axis=1)


def _check_sizes(labels: pd.Series, minimum: int, what: str) -> None:
    counts = labels.value_counts()
    small = counts[counts < minimum]
    if len(small):
        raise ValueError(f"{what} needs at least {minimum} samples per stratum; too few in "
                         + ", ".join(f"{k} ({v})" for k, v in small.items()))


def holdout_split(obs: pd.DataFrame, test_size: float = 0.2, by: tuple[str, ...] = ("tissue",),
                  seed: int = 0) -> tuple[pd.Index, pd.Index]:
    """Train and test sample ids, stratified by ``by`` (the paper: tissue)."""
    labels = strata(obs, by)
    _check_sizes(labels, 2, "a stratified hold-out")
    train, test = train_test_split(obs.index.to_numpy(), test_size=test_size,
                                   stratify=labels.to_numpy(), random_state=seed, shuffle=True)
    return pd.Index(train, name=obs.index.name), pd.Index(test, name=obs.index.name)


def cv_folds(obs: pd.DataFrame, n_splits: int = 5, by: tuple[str, ...] = ("tissue", "modality"),
             seed: int = 0) -> pd.Series:
    """The fold (0..n_splits-1) of each sample, stratified by ``by`` (the paper: tissue and
    modality); a sample is in the test part of exactly one fold."""
    labels = strata(obs, by)
    _check_sizes(labels, n_splits, f"{n_splits}-fold cross-validation")
    folds = np.empty(len(obs), dtype=int)
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(obs)), labels.to_numpy())):
        folds[test] = fold
    return pd.Series(folds, index=obs.index, name="fold")
