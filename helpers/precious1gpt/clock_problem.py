"""The problem the Precious1GPT clock chapters solve: the two cohorts in one gene space, the
paper's 80/20 hold-out stratified by tissue, a validation split carved from the training part
(by tissue and modality) for early stopping and hyperparameter search, and the chapter's output
folder. Every Optuna worker rebuilds the same problem from (profile, seed, settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.common import splits
from helpers.data.cache import cache_key, output_dir, source_digest
from helpers.precious1gpt import multimodal, transformer_clock


@dataclass
class ClockProblem:
    """The clock's data and splits: hold-out test (20%, by tissue), the training part, and a
    validation split carved from it (by tissue and modality) for early stopping and search."""

    data: multimodal.ClockData
    space: multimodal.FeatureSpace
    table: pd.DataFrame
    train: pd.Index
    test: pd.Index
    fit: pd.Index
    valid: pd.Index
    training: transformer_clock.Training
    settings: dict

    def fingerprint(self) -> str:
        """A short id of data, splits and training settings: studies are keyed by it."""
        return cache_key("p1-clock-problem", self.settings)[:12]

    def rows(self, part: str) -> pd.DataFrame:
        """The encoded rows of ``fit``, ``valid``, ``train`` or ``test``."""
        return self.table.loc[getattr(self, part)]


def clock_problem(data: multimodal.ClockData, seed: int, test_size: float = 0.2,
                  valid_size: float = 0.1, max_epochs: int = 100, patience: int = 10,
                  target: str | None = None, workdir: Path | None = None,
                  progress: bool = True, about: dict | None = None,
                  test: pd.Index | None = None, group: str | None = None,
                  stratify: tuple[str, ...] = ("tissue",),
                  valid_stratify: tuple[str, ...] = ("tissue", "modality"),
                  n_features: int | None = None) -> ClockProblem:
    """Split (or take the given ``test`` ids, e.g. a cross-validation fold), carve the
    validation split from the training part, fit the feature space on it and encode every
    sample. ``group`` (e.g. ``donor``) keeps each group on one side of both splits;
    ``stratify`` / ``valid_stratify`` are the columns the hold-out and validation splits
    balance (the paper's: tissue, then tissue and modality); ``target`` defaults to the data's.
    The settings (and so the fingerprint that keys tuning studies) include the split itself."""
    target = target or data.target
    if test is None:
        train, test = splits.holdout_split(data.obs, test_size, by=stratify, seed=seed,
                                           group=group)
    else:
        unknown = pd.Index(test).difference(data.obs.index)
        if len(unknown):
            raise ValueError(f"{len(unknown)} test ids are not samples of the data (e.g. "
                             f"{list(unknown[:3])})")
        train = data.obs.index.difference(test, sort=False)
    fit_ids, valid = splits.holdout_split(data.obs.loc[train], valid_size, by=valid_stratify,
                                          seed=seed, group=group)
    space, table = data.design(train, target=target, n_features=n_features)
    training = transformer_clock.Training(max_epochs, patience, seed, workdir, progress)
    settings = {**(about or {}), "seed": seed, "test_size": test_size,
                "valid_size": valid_size, "max_epochs": max_epochs, "patience": patience,
                "target": target, "samples": len(table), "genes": len(space.genes),
                "group": group, "stratify": list(stratify),
                "valid_stratify": list(valid_stratify), "n_features": n_features,
                "split": split_id(test, valid)}
    return ClockProblem(data, space, table, train, pd.Index(test), fit_ids, valid, training,
                        settings)


def split_id(test: pd.Index, valid: pd.Index) -> str:
    """A short hash of which samples are held out and which validate: two folds of one
    cross-validation never share a study, since each was tuned on its own training part."""
    return cache_key("split", {"test": sorted(map(str, test)),
                               "valid": sorted(map(str, valid))})[:12]


def prediction_frame(problem: ClockProblem, ids: pd.Index, predicted) -> pd.DataFrame:
    """Predictions beside the samples' modality, tissue, training label (``age``: GTEx
    bracket midpoints for expression) and exact age (the ``age`` column of the sample table
    when there is one, as the simulator knows it; else the label)."""
    obs = problem.data.obs.loc[ids]
    label = problem.table.loc[ids, transformer_clock.TARGET].astype(float)
    exact = obs["age"].astype(float) if "age" in obs.columns else label
    return pd.DataFrame({"modality": obs["modality"], "tissue": obs["tissue"], "age": label,
                         "age_exact": exact, "predicted": list(predicted)}, index=ids)


def output_folder(profile: str, seed: int) -> Path:
    """Where the clock chapter keeps its study, model and tables for a profile and seed."""
    return output_dir("p1_transformer_clock", profile, seed)


def training_code_version() -> str:
    """A hash of the encoding and training code: a stored study is not resumed with trials
    that another version of it scored."""
    from helpers.precious1gpt import tuning

    return source_digest(multimodal, transformer_clock, tuning)


def simulated_problem(profile: str, seed: int, **kwargs) -> ClockProblem:
    """The clock problem on the simulated cohorts of a profile (what the chapter solves):
    split by donor (a GTEx donor gives several tissues, with one age and a donor offset on
    every gene; ``group=None`` restores the paper's split by sample) and expression prepared
    on the training samples only (``prepare="cohort"``: on every sample, as the paper)."""
    from helpers.precious1gpt import simulator

    kwargs.setdefault("group", "donor")
    prepare = kwargs.pop("prepare", True)
    sim = simulator.cohorts_for(profile, seed)
    data = multimodal.clock_data(sim.methylation, sim.expression, prepare=prepare)
    about = {"profile": profile, "data": data.data, "simulator": simulator.code_version(),
             "training_code": training_code_version(), "prepare": data.prepare}
    return clock_problem(data, seed, about=about, **kwargs)
