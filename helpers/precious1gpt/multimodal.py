"""Precious1GPT's multimodal input: one gene-symbol feature space that methylation and expression
samples both fill, with tissue and modality as the categorical inputs.

Each gene is standard-scaled per modality on the training samples only. A gene measured in one
modality only is set to 0 (its training mean on the z scale, i.e. "no information") for every
sample of the other modality: the ``modality`` input tells the model which genes are empty. A
gene the model expects but a new cohort lacks is an error (or, when asked, filled at 0 and
reported), never silently imputed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.common import expression
from helpers.common.clocks import MissingFeaturesError

CATEGORICAL = ["tissue", "modality"]
MODALITIES = ("methylation", "expression")


@dataclass
class FeatureSpace:
    """The shared gene space, each modality's scaling and the category levels of training."""

    genes: list[str]
    scale: pd.DataFrame  # index genes; columns <modality>_mean, <modality>_sd (NaN: not measured)
    tissues: list[str]
    modalities: list[str]

    def measured(self, modality: str) -> pd.Index:
        """The genes this modality measures (a training mean exists)."""
        self._check_modality(modality)
        column = self.scale[f"{modality}_mean"]
        return column.index[column.notna()]

    def genes_not_in(self, modality: str) -> pd.Index:
        """The genes this modality does not measure (0 for its samples)."""
        return self.scale.index.difference(self.measured(modality), sort=False)

    def coverage(self) -> pd.Series:
        """Per gene: measured in both modalities or in one only."""
        both = self.scale[[f"{m}_mean" for m in self.modalities]].notna()
        label = np.where(both.all(axis=1), "both", "")
        for m in self.modalities:
            only = both[f"{m}_mean"] & ~both.drop(columns=f"{m}_mean").any(axis=1)
            label = np.where(only, f"{m} only", label)
        return pd.Series(label, index=self.scale.index, name="measured_in")

    def _check_modality(self, modality: str) -> None:
        if modality not in self.modalities:
            raise ValueError(f"unknown modality {modality!r}; the feature space has "
                             f"{self.modalities}")

    def save(self, path: Path | str) -> Path:
        """Write the space as JSON (plain numbers and strings, nothing executable)."""
        doc = {"genes": self.genes, "tissues": self.tissues, "modalities": self.modalities,
               "scale": {c: [None if np.isnan(v) else float(v) for v in self.scale[c]]
                         for c in self.scale.columns}}
        Path(path).write_text(json.dumps(doc))
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> FeatureSpace:
        """Read a space written by :meth:`save`."""
        doc = json.loads(Path(path).read_text())
        scale = pd.DataFrame({c: np.array(v, dtype=float) for c, v in doc["scale"].items()},
                             index=pd.Index(doc["genes"], name="gene"))
        return cls(doc["genes"], scale, doc["tissues"], doc["modalities"])


def fit_feature_space(values: dict[str, pd.DataFrame], obs: pd.DataFrame) -> FeatureSpace:
    """Fit per-modality gene scaling on training samples (``values``: modality -> samples x
    genes); the gene space is the union, methylation genes first. A gene constant in training
    keeps sd 1 (it is only centred)."""
    unknown = sorted(set(values) - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; expected {list(MODALITIES)}")
    genes = pd.Index([], dtype=object, name="gene")
    for frame in values.values():
        genes = genes.append(frame.columns.difference(genes, sort=False))
    scale = pd.DataFrame(index=pd.Index(genes, name="gene"))
    for modality, frame in values.items():
        sd = frame.std(ddof=0)
        scale[f"{modality}_mean"] = frame.mean()
        scale[f"{modality}_sd"] = sd.where(sd > 1e-8, 1.0)
    samples = pd.Index([]).append([frame.index for frame in values.values()])
    tissues = sorted(obs.loc[samples, "tissue"].astype(str).unique())
    return FeatureSpace(list(genes), scale, tissues, list(values))


def encode(space: FeatureSpace, values: pd.DataFrame, obs: pd.DataFrame, modality: str,
           allow_missing: bool = False) -> tuple[pd.DataFrame, dict]:
    """Samples of one modality in the shared space: z-scored genes (0 where the modality does
    not measure a gene), then ``tissue`` and ``modality``. Returns the table and a report of
    genes missing from ``values`` and of missing values (both errors unless ``allow_missing``,
    which fills them at the training mean and reports them)."""
    measured = space.measured(modality)
    absent = measured.difference(values.columns)
    block = values.reindex(columns=measured).astype(np.float64)
    holes = int(block.drop(columns=absent).isna().to_numpy().sum())
    if (len(absent) or holes) and not allow_missing:
        if len(absent):
            raise MissingFeaturesError(
                f"{len(absent)} of the model's {len(measured)} {modality} genes are missing "
                f"from the input (e.g. {list(absent[:5])}); pass allow_missing=True to fill "
                "them at the training mean, reported")
        raise ValueError(f"{holes} missing {modality} values in the input; pass "
                         "allow_missing=True to fill them at the training mean, reported")
    tissues = obs.loc[values.index, "tissue"].astype(str)
    unseen = sorted(set(tissues) - set(space.tissues))
    if unseen:
        raise ValueError(f"tissue(s) {unseen} were not seen in training; known: {space.tissues}")
    z = (block - space.scale.loc[measured, f"{modality}_mean"]) / space.scale.loc[
        measured, f"{modality}_sd"]
    genes = z.reindex(columns=space.genes).fillna(0.0).astype(np.float32)
    categories = pd.DataFrame({"tissue": tissues.to_numpy(), "modality": modality},
                              index=values.index)
    table = pd.concat([genes, categories], axis=1)
    report = {"modality": modality, "samples": len(values), "genes_expected": len(measured),
              "genes_missing": list(absent), "values_missing": holes}
    return table, report


def prepare_expression(adata) -> pd.DataFrame:
    """Expression as the paper feeds it: ComBat on the sequencing batch (tissue protected),
    then quantile normalisation (``helpers.common.expression``)."""
    values = adata.to_df()
    corrected = expression.combat(values, adata.obs["batch"], covariates=adata.obs[["tissue"]])
    return expression.quantile_normalise(corrected)


@dataclass
class ClockData:
    """The two training cohorts as the clock sees them: values per modality and one sample
    table (modality, tissue, age, age_reported, ...)."""

    values: dict[str, pd.DataFrame]
    obs: pd.DataFrame
    data: str  # "real" or "simulated"

    def design(self, train: pd.Index, target: str = "age_reported"
               ) -> tuple[FeatureSpace, pd.DataFrame]:
        """Fit the feature space on ``train`` samples and encode every sample, with the
        target column ``age``."""
        fit_on = {m: v.loc[v.index.intersection(train)] for m, v in self.values.items()}
        space = fit_feature_space(fit_on, self.obs)
        parts = [encode(space, v, self.obs, m)[0] for m, v in self.values.items()]
        table = pd.concat(parts)
        table["age"] = self.obs.loc[table.index, target].astype(np.float32).to_numpy()
        return space, table


def clock_data(methylation, expression_adata) -> ClockData:
    """Assemble the methylation and (ComBat + qnorm prepared) expression cohorts."""
    values = {"methylation": methylation.to_df(),
              "expression": prepare_expression(expression_adata)}
    columns = ["modality", "tissue", "age", "age_reported"]
    obs = pd.concat([methylation.obs[columns], expression_adata.obs[columns]])
    obs[["tissue", "modality"]] = obs[["tissue", "modality"]].astype(str)
    labels = {methylation.uns.get("data", "real"), expression_adata.uns.get("data", "real")}
    return ClockData(values, obs, "simulated" if "simulated" in labels else "real")
