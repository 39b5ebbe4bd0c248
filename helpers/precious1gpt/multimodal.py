"""Precious1GPT's multimodal input: one gene-symbol feature space that methylation and expression
samples both fill, with tissue and modality as the categorical inputs.

Each gene is standard-scaled per modality on the training samples only. A gene measured in one
modality only is set to 0 (its training mean on the z scale, i.e. "no information") for every
sample of the other modality: the ``modality`` input tells the model which genes are empty. A
gene the model expects but a new cohort lacks is an error (or, when asked, filled at 0 and
reported), never silently imputed.

The same space serves one modality and one tissue: :func:`clock_data` takes either modality
or both, as AnnData or as a pandas table with a sample table, and needs only the target
column (any name) from the metadata. An absent ``tissue`` column is one tissue
(:data:`ONE_LEVEL`); an absent ``batch`` column means no batch correction.
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
ONE_LEVEL = "all"  # the level of a categorical column the data do not have


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
    genes, any modality labels, one or more); the gene space is the union, in the order the
    modalities are given. A gene constant in training keeps sd 1 (it is only centred)."""
    if not values:
        raise ValueError("no modality given: values must map a modality label to a table")
    genes = pd.Index([], dtype=object, name="gene")
    for frame in values.values():
        genes = genes.append(frame.columns.difference(genes, sort=False))
    scale = pd.DataFrame(index=pd.Index(genes, name="gene"))
    for modality, frame in values.items():
        sd = frame.std(ddof=0)
        scale[f"{modality}_mean"] = frame.mean()
        scale[f"{modality}_sd"] = sd.where(sd > 1e-8, 1.0)
    samples = pd.Index([]).append([frame.index for frame in values.values()])
    tissues = sorted(_tissues(obs, samples).unique())
    return FeatureSpace(list(genes), scale, tissues, list(values))


def _tissues(obs: pd.DataFrame, ids: pd.Index) -> pd.Series:
    """The tissue of each sample, or :data:`ONE_LEVEL` when the sample table has none."""
    if "tissue" not in obs.columns:
        return pd.Series(ONE_LEVEL, index=ids)
    return obs.loc[ids, "tissue"].astype(str)


def check_values(block: pd.DataFrame, modality: str) -> None:
    """Refuse infinite inputs, and methylation values outside [0, 1] (the model takes beta
    values: M-values or percentages would be read as ages far outside any range), naming the
    gene and the range found. Missing values (NaN) are counted apart by :func:`encode`."""
    array = block.to_numpy(dtype=float)
    infinite = np.isinf(array)
    if infinite.any():
        gene = block.columns[int(np.argmax(infinite.any(axis=0)))]
        raise ValueError(f"{modality} input: infinite value in gene {gene!r}; expected finite "
                         "numbers")
    if modality == "methylation":
        outside = ~np.isnan(array) & ((array < 0) | (array > 1))
        if outside.any():
            gene = block.columns[int(np.argmax(outside.any(axis=0)))]
            raise ValueError(f"methylation input: value outside [0, 1] in gene {gene!r} (range "
                             f"{np.nanmin(array):.3g} to {np.nanmax(array):.3g}); expected beta "
                             "values (the methylated fraction): convert M-values or "
                             "percentages first")


def encode(space: FeatureSpace, values: pd.DataFrame, obs: pd.DataFrame, modality: str,
           allow_missing: bool = False) -> tuple[pd.DataFrame, dict]:
    """Samples of one modality in the shared space: z-scored genes (0 where the modality does
    not measure a gene), then ``tissue`` and ``modality``. Returns the table and a report of
    genes missing from ``values`` and of missing values (both errors unless ``allow_missing``,
    which fills them at the training mean and reports them)."""
    measured = space.measured(modality)
    absent = measured.difference(values.columns)
    block = values.reindex(columns=measured).astype(np.float64)
    check_values(block, modality)
    holes = int(block.drop(columns=absent).isna().to_numpy().sum())
    if (len(absent) or holes) and not allow_missing:
        if len(absent):
            raise MissingFeaturesError(
                f"{len(absent)} of the model's {len(measured)} {modality} genes are missing "
                f"from the input (e.g. {list(absent[:5])}); pass allow_missing=True to fill "
                "them at the training mean, reported")
        raise ValueError(f"{holes} missing {modality} values in the input; pass "
                         "allow_missing=True to fill them at the training mean, reported")
    tissues = _tissues(obs, values.index)
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


def prepare_expression(adata, obs: pd.DataFrame | None = None, batch: str = "batch",
                       tissue: str = "tissue") -> pd.DataFrame:
    """Expression as the paper feeds it: ComBat on the sequencing batch (tissue protected when
    there are several), then quantile normalisation (``helpers.common.expression``), both over
    every sample (:func:`prepare_expression_on` with all samples as training samples). ``adata``
    is an AnnData or a samples x genes table (with ``obs``); without a ``batch`` column, or with
    one batch, ComBat is skipped (there is nothing to correct)."""
    values, obs = _values_and_obs(adata, obs, "expression")
    return prepare_expression_on(values, obs, values.index, batch=batch, tissue=tissue)


def prepare_expression_on(values: pd.DataFrame, obs: pd.DataFrame, train: pd.Index,
                          batch: str = "batch", tissue: str = "tissue") -> pd.DataFrame:
    """:func:`prepare_expression` fitted on the ``train`` samples only: ComBat on them, its
    per-batch line carried to the held-out samples
    (:func:`helpers.common.expression.apply_batch_map`), and
    every sample quantile-normalised onto the training samples' distribution. No held-out value
    moves a training value, a batch estimate or the target distribution."""
    fit_ids = values.index.intersection(train)
    held = values.index.difference(fit_ids, sort=False)
    if len(fit_ids) == 0:
        raise ValueError("prepare_expression_on: no expression sample is in the training set")
    fit_values, fit_obs = values.loc[fit_ids], obs.loc[fit_ids]
    corrected, held_corrected = fit_values, values.loc[held]
    if batch in obs.columns and fit_obs[batch].nunique() > 1:
        covariates = fit_obs[[tissue]] if tissue in obs.columns and \
            fit_obs[tissue].nunique() > 1 else None
        corrected = expression.combat(fit_values, fit_obs[batch], covariates=covariates)
        if len(held):
            mapping = expression.batch_map(fit_values, corrected, fit_obs[batch])
            held_corrected = expression.apply_batch_map(mapping, values.loc[held],
                                                        obs.loc[held, batch])
    target = expression.quantile_reference(corrected)
    parts = [expression.quantile_normalise(corrected, target=target)]
    if len(held):
        parts.append(expression.quantile_normalise(held_corrected, target=target))
    return pd.concat(parts).loc[values.index]


def _values_and_obs(data, obs: pd.DataFrame | None, modality: str
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(samples x genes values, sample table) of an AnnData or of a table plus ``obs``."""
    if isinstance(data, pd.DataFrame):
        if obs is None:
            raise ValueError(f"{modality}: a values table needs its sample table (obs=...)")
        missing = data.index.difference(obs.index)
        if len(missing):
            raise ValueError(f"{modality}: {len(missing)} samples have no row in the sample "
                             f"table (e.g. {list(missing[:3])})")
        return data, obs.loc[data.index]
    if not hasattr(data, "to_df"):
        raise TypeError(f"{modality}: expected an AnnData or a pandas DataFrame, got "
                        f"{type(data).__name__}")
    return data.to_df(), data.obs


def select_genes(values: pd.DataFrame, n_features: int | None) -> pd.Index:
    """The ``n_features`` genes of highest variance in ``values`` (training samples only:
    nothing about held-out samples chooses a feature); all genes when None."""
    if n_features is None or n_features >= values.shape[1]:
        return values.columns
    variance = values.var(ddof=0).sort_values(ascending=False, kind="stable")
    return pd.Index(sorted(variance.index[:n_features], key=list(values.columns).index))


@dataclass
class ClockData:
    """The training cohorts as the clock sees them: values per modality and one sample table
    (modality, tissue, the ``target`` column, and whatever else was given, e.g. donor)."""

    values: dict[str, pd.DataFrame]
    obs: pd.DataFrame
    data: str  # "real" or "simulated"
    target: str = "age_reported"
    # expression preparation: "training" (fitted on each training set, the default of
    # clock_data), "cohort" (once on every sample, held-out ones included: the paper's order,
    # kept to measure what it is worth) or "none" (values used as given)
    prepare: str = "none"
    batch: str = "batch"

    def prepared(self, train: pd.Index) -> dict[str, pd.DataFrame]:
        """The values as a clock trained on ``train`` sees them."""
        out = dict(self.values)
        if self.prepare == "training" and "expression" in out:
            out["expression"] = prepare_expression_on(out["expression"], self.obs, train,
                                                      batch=self.batch)
        return out

    def design(self, train: pd.Index, target: str | None = None,
               n_features: int | None = None) -> tuple[FeatureSpace, pd.DataFrame]:
        """Fit the feature space on ``train`` samples (keeping each modality's ``n_features``
        most variable training genes when given) and encode every sample, with the target
        column ``age``."""
        target = target or self.target
        values = self.prepared(train)
        fit_on = {}
        for m, v in values.items():
            rows = v.loc[v.index.intersection(train)]
            fit_on[m] = rows[select_genes(rows, n_features)]
        space = fit_feature_space(fit_on, self.obs)
        parts = [encode(space, v[fit_on[m].columns], self.obs, m)[0]
                 for m, v in values.items()]
        table = pd.concat(parts)
        table["age"] = self.obs.loc[table.index, target].astype(np.float32).to_numpy()
        return space, table


def clock_data(methylation=None, expression_data=None, *, obs: pd.DataFrame | None = None,
               target: str = "age_reported", prepare: bool | str = True, batch: str = "batch",
               data: str | None = None) -> ClockData:
    """The clock's cohorts from either modality or both: each an AnnData (X samples x genes,
    its ``obs`` the sample table) or a samples x genes table whose sample table is ``obs``.
    The metadata the method needs is the ``target`` column (e.g. ``age``; the paper's default
    ``age_reported``); ``tissue``, ``batch`` and ``donor`` are used when present. Expression is
    prepared the paper's way (ComBat, quantile normalisation) fitted on each training set
    (``prepare`` True or "training"), once on all samples ("cohort": held-out samples reach
    the fit, kept to measure that) or not at all (False). ``data`` ("real" / "simulated")
    defaults to what the inputs say (AnnData ``uns['data']``), else real.
    """
    modes = {True: "training", False: "none", "training": "training", "cohort": "cohort",
             "none": "none"}
    if prepare not in modes:
        raise ValueError(f"prepare={prepare!r}: expected True, False, 'training', 'cohort' "
                         "or 'none'")
    mode = modes[prepare]
    given = {m: d for m, d in (("methylation", methylation), ("expression", expression_data))
             if d is not None}
    if not given:
        raise ValueError("clock_data needs methylation, expression or both")
    values, tables, labels = {}, [], set()
    for modality, source in given.items():
        frame, sample_table = _values_and_obs(source, obs, modality)
        if target not in sample_table.columns:
            raise ValueError(f"{modality}: the sample table has no target column {target!r} "
                             f"(it has {list(sample_table.columns)})")
        if sample_table[target].isna().any():
            raise ValueError(f"{modality}: {int(sample_table[target].isna().sum())} samples have"
                             f" no {target!r}")
        if frame.index.has_duplicates:
            raise ValueError(f"{modality}: duplicated sample ids "
                             f"{list(frame.index[frame.index.duplicated()][:3])}")
        if modality == "expression" and mode == "cohort":
            frame = prepare_expression(frame, sample_table, batch=batch)
        values[modality] = frame
        table = sample_table.copy()
        table["modality"] = modality
        if "tissue" not in table.columns:
            table["tissue"] = ONE_LEVEL
        tables.append(table)
        labels.add(getattr(source, "uns", {}).get("data", "real"))
    merged = pd.concat(tables)
    if merged.index.has_duplicates:
        raise ValueError("a sample id appears in both modalities: "
                         f"{list(merged.index[merged.index.duplicated()][:3])}")
    merged[["tissue", "modality"]] = merged[["tissue", "modality"]].astype(str)
    label = data or ("simulated" if "simulated" in labels else "real")
    return ClockData(values, merged, label, target,
                     prepare=mode if "expression" in values else "none", batch=batch)
