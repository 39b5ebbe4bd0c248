"""Evaluation splits: the papers' ones (Precious1GPT's 80/20 shuffle split stratified by tissue
for Table 1 and Supplementary Table 2, and 5-fold cross-validation stratified by tissue and
modality for Supplementary Table 1) and the general form a user needs on their own data: folds
stratified by any columns (e.g. an age group), grouped by donor so that no donor is on both
sides, and repeated with new shuffles. Every split takes a seed and returns sample ids.

The descriptive columns ``tissue``, ``modality`` and ``batch`` are optional: a sample table
without one of them is one level of it (a study of one tissue has nothing to stratify by).
Any other missing column is an error naming it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupShuffleSplit,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

OPTIONAL = ("tissue", "modality", "batch")


def strata(obs: pd.DataFrame, by: tuple[str, ...]) -> pd.Series:
    """One label per sample joining the ``by`` columns (e.g. ``Blood|methylation``); an absent
    optional column (tissue, modality, batch) is one level, any other absent column an error."""
    missing = [c for c in by if c not in obs.columns and c not in OPTIONAL]
    if missing:
        raise ValueError(f"sample table lacks field(s) {missing} (it has {list(obs.columns)})")
    present = [c for c in by if c in obs.columns]
    if not present:
        return pd.Series("all", index=obs.index)
    return obs[present].astype(str).agg("|".join, axis=1)


def age_strata(age: pd.Series, n_groups: int = 3) -> pd.Series:
    """Age groups of about equal size (quantile bins, labelled by their range) for stratifying
    folds so that every fold spans young and old samples."""
    age = pd.Series(age, dtype=float)
    if age.isna().any():
        raise ValueError(f"{int(age.isna().sum())} samples have no age; age groups need all")
    bins = pd.qcut(age.rank(method="first"), n_groups, labels=False)
    ranges = age.groupby(bins).agg(["min", "max"])
    labels = {b: f"{r['min']:g}-{r['max']:g}" for b, r in ranges.iterrows()}
    return bins.map(labels).rename("age_group")


def _check_sizes(labels: pd.Series, minimum: int, what: str) -> None:
    counts = labels.value_counts()
    small = counts[counts < minimum]
    if len(small):
        raise ValueError(f"{what} needs at least {minimum} samples per stratum; too few in "
                         + ", ".join(f"{k} ({v})" for k, v in small.items()))


def _groups(obs: pd.DataFrame, group: str | None) -> pd.Series | None:
    if group is None:
        return None
    if group not in obs.columns:
        raise ValueError(f"sample table lacks the group field {group!r}")
    if obs[group].isna().any():
        raise ValueError(f"{int(obs[group].isna().sum())} samples have no {group!r}")
    return obs[group].astype(str)


def holdout_split(obs: pd.DataFrame, test_size: float = 0.2, by: tuple[str, ...] = ("tissue",),
                  seed: int = 0, group: str | None = None) -> tuple[pd.Index, pd.Index]:
    """Train and test sample ids, stratified by ``by`` (the paper: tissue); with ``group``
    (e.g. ``donor``) every group falls wholly on one side (stratification then approximate:
    the grouped split takes the first fold of a stratified group k-fold of about 1/test_size
    folds)."""
    labels = strata(obs, by)
    groups = _groups(obs, group)
    ids = obs.index.to_numpy()
    if groups is None:
        _check_sizes(labels, 2, "a stratified hold-out")
        train, test = train_test_split(ids, test_size=test_size, stratify=labels.to_numpy(),
                                       random_state=seed, shuffle=True)
        return pd.Index(train, name=obs.index.name), pd.Index(test, name=obs.index.name)
    n_splits = max(2, int(round(1 / test_size)))
    if groups.nunique() < n_splits:
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train_at, test_at = next(splitter.split(ids, groups=groups.to_numpy()))
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train_at, test_at = next(splitter.split(ids, labels.to_numpy(), groups.to_numpy()))
    return (pd.Index(ids[train_at], name=obs.index.name),
            pd.Index(ids[test_at], name=obs.index.name))


def repeated_folds(obs: pd.DataFrame, n_splits: int = 5, n_repeats: int = 1,
                   by: tuple[str, ...] = ("tissue", "modality"), group: str | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """The fold (0..n_splits-1) of every sample in each repeat (columns 0..n_repeats-1):
    stratified by ``by`` (none: plain shuffled k-fold), grouped by ``group`` when given (a
    group is in one fold), each repeat shuffled with its own seed (``seed + repeat``). In every
    repeat each sample is in the test part of exactly one fold."""
    if n_splits < 2 or n_repeats < 1:
        raise ValueError(f"n_splits={n_splits} must be >= 2 and n_repeats={n_repeats} >= 1")
    labels = strata(obs, by)
    groups = _groups(obs, group)
    if groups is None:
        if labels.nunique() > 1:
            _check_sizes(labels, n_splits, f"{n_splits}-fold cross-validation")
    elif groups.nunique() < n_splits:
        raise ValueError(f"{n_splits}-fold cross-validation grouped by {group!r} needs at least "
                         f"{n_splits} groups; there are {groups.nunique()}")
    table = pd.DataFrame(index=obs.index)
    for repeat in range(n_repeats):
        state = seed + repeat
        if groups is not None:
            splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=state)
            parts = splitter.split(np.zeros(len(obs)), labels.to_numpy(), groups.to_numpy())
        elif labels.nunique() > 1:
            splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=state)
            parts = splitter.split(np.zeros(len(obs)), labels.to_numpy())
        else:
            parts = KFold(n_splits=n_splits, shuffle=True, random_state=state).split(obs)
        fold = np.full(len(obs), -1)
        for number, (_, test) in enumerate(parts):
            fold[test] = number
        table[repeat] = fold
    table.columns.name = "repeat"
    return table


def cv_folds(obs: pd.DataFrame, n_splits: int = 5, by: tuple[str, ...] = ("tissue", "modality"),
             seed: int = 0, group: str | None = None) -> pd.Series:
    """The fold (0..n_splits-1) of each sample, stratified by ``by`` (the paper: tissue and
    modality) and grouped by ``group`` when given; a sample is in the test part of exactly one
    fold (one repeat of :func:`repeated_folds`)."""
    return repeated_folds(obs, n_splits, 1, by, group, seed)[0].rename("fold")


def held_out_ids(folds: pd.DataFrame | pd.Series, fold: int, repeat: int = 0) -> pd.Index:
    """The held-out sample ids of one fold (of one repeat)."""
    column = folds if isinstance(folds, pd.Series) else folds[repeat]
    return column.index[column.to_numpy() == fold]
