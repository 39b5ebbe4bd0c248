"""The problem the Precious1GPT clock chapters solve: the two cohorts in one gene space, the
paper's 80/20 hold-out stratified by tissue, a validation split carved from the training part
(by tissue and modality) for early stopping and hyperparameter search, and the chapter's output
folder. Every Optuna worker rebuilds the same problem from (profile, seed, settings)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.common import splits
from helpers.data.cache import cache_key, output_dir
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
                  target: str = "age_reported", workdir: Path | None = None,
                  progress: bool = True, about: dict | None = None,
                  test: pd.Index | None = None) -> ClockProblem:
    """Split (or take the given ``test`` ids, e.g. a cross-validation fold), carve the
    validation split, fit the feature space on the training part and encode every sample."""
    if test is None:
        train, test = splits.holdout_split(data.obs, test_size, by=("tissue",), seed=seed)
    else:
        train = data.obs.index.difference(test, sort=False)
    fit_ids, valid = splits.holdout_split(data.obs.loc[train], valid_size,
                                          by=("tissue", "modality"), seed=seed)
    space, table = data.design(train, target=target)
    training = transformer_clock.Training(max_epochs, patience, seed, workdir, progress)
    settings = {**(about or {}), "seed": seed, "test_size": test_size,
                "valid_size": valid_size, "max_epochs": max_epochs, "patience": patience,
                "target": target, "samples": len(table), "genes": len(space.genes)}
    return ClockProblem(data, space, table, train, test, fit_ids, valid, training, settings)


def prediction_frame(problem: ClockProblem, ids: pd.Index, predicted) -> pd.DataFrame:
    """Predictions beside the samples' modality, tissue, training label (``age``: GTEx
    bracket midpoints for expression) and exact age (known only to the simulator)."""
    obs = problem.data.obs.loc[ids]
    return pd.DataFrame({"modality": obs["modality"], "tissue": obs["tissue"],
                         "age": problem.table.loc[ids, transformer_clock.TARGET].astype(float),
                         "age_exact": obs["age"].astype(float),
                         "predicted": list(predicted)}, index=ids)


def output_folder(profile: str, seed: int) -> Path:
    """Where the clock chapter keeps its study, model and tables for a profile and seed."""
    return output_dir("p1_transformer_clock", profile, seed)


def training_code_version() -> str:
    """A hash of the encoding and training code: a stored study is not resumed with trials
    that another version of it scored."""
    digest = hashlib.sha256()
    for module in (multimodal, transformer_clock):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def simulated_problem(profile: str, seed: int, **kwargs) -> ClockProblem:
    """The clock problem on the simulated cohorts of a profile (what the chapter solves)."""
    from helpers.precious1gpt import simulator

    sim = simulator.cohorts_for(profile, seed)
    data = multimodal.clock_data(sim.methylation, sim.expression)
    about = {"profile": profile, "data": data.data, "simulator": simulator.code_version(),
             "training_code": training_code_version()}
    return clock_problem(data, seed, about=about, **kwargs)
