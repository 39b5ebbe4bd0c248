"""Published linear DNA-methylation clocks (Horvath 2013/2018, Hannum 2013, PhenoAge 2018).

Weights come from the registry's real files. By default a clock is applied only to samples that
carry all of its CpGs; :func:`apply_clock` can instead follow a named rule for missing CpGs and
missing values, and always returns the report of what was missing and what the rule did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers.data.formats import DataFormatError
from helpers.data.registry import fetch, load_registry

# name -> (registry key, intercept, output transform). Intercepts are the clocks' published
# parameters (Horvath 2013: 0.696; Horvath 2018: -0.447119319); PhenoAge keeps its own in the
# file's `intercept` row; Hannum has none.
CLOCK_SPECS = {
    "horvath2013": ("clock_horvath2013", 0.696, "horvath"),
    "horvath2018": ("clock_horvath2018", -0.447119319, "horvath"),
    "hannum2013": ("clock_hannum2013", 0.0, "identity"),
    "phenoage2018": ("clock_phenoage2018", None, "identity"),
}


class MissingFeaturesError(KeyError):
    """Samples lack features a model needs; the message lists them (nothing is imputed)."""


@dataclass(frozen=True)
class LinearClock:
    """A linear clock: age = transform(intercept + sum(beta * weight))."""

    name: str
    weights: pd.Series
    intercept: float
    transform: str
    provenance: dict


def horvath_transform(age):
    """Horvath's F: log(age + 1) - log(21) up to age 20 (childhood), (age - 20) / 21 after;
    defined for prenatal ages above -1 year too (fetal samples)."""
    age = np.asarray(age, dtype=float)
    if (age <= -1).any():
        raise ValueError("Horvath's age transform needs ages above -1 year")
    young = np.log(np.maximum(age, -1 + 1e-9) + 1.0) - np.log(21.0)
    return np.where(age <= 20, young, (age - 20.0) / 21.0)


def horvath_inverse_transform(x):
    """Horvath's F^-1: 21*exp(x) - 1 below 0 (log-scaled childhood), 21*x + 20 above."""
    x = np.asarray(x, dtype=float)
    return np.where(x < 0, 21.0 * np.exp(np.minimum(x, 0.0)) - 1.0, 21.0 * x + 20.0)


def load_clock(name: str) -> LinearClock:
    """Read a published clock's weights from the registry (hash-verified CSV)."""
    if name not in CLOCK_SPECS:
        raise KeyError(f"unknown clock {name!r}; known: {sorted(CLOCK_SPECS)}")
    key, intercept, transform = CLOCK_SPECS[name]
    path = fetch(key)
    table = pd.read_csv(path)
    for field in ("CpGmarker", "CoefficientTraining"):
        if field not in table.columns:
            raise DataFormatError(f"{path}: missing field {field!r}")
    weights = table.set_index("CpGmarker")["CoefficientTraining"].astype(float)
    if "intercept" in weights.index:
        intercept = float(weights.pop("intercept"))
    if intercept is None:
        raise DataFormatError(f"{path}: clock {name} needs an `intercept` row")
    if weights.index.has_duplicates:
        raise DataFormatError(f"{path}: field CpGmarker has duplicated CpGs")
    return LinearClock(name, weights, float(intercept), transform,
                       load_registry()[key].provenance)


def missing_cpgs(clock: LinearClock, cpgs) -> list[str]:
    """The clock's CpGs absent from ``cpgs``, in the clock's order."""
    present = set(cpgs)
    return [c for c in clock.weights.index if c not in present]


def clock_coverage(clock: LinearClock, cpgs) -> dict:
    """How many of the clock's CpGs a dataset carries (count and share missing)."""
    missing = missing_cpgs(clock, cpgs)
    n = len(clock.weights)
    return {"clock": clock.name, "n_cpgs": n, "n_missing": len(missing),
            "share_missing": len(missing) / n, "missing": missing}


def predict_age(clock: LinearClock, betas: pd.DataFrame) -> pd.Series:
    """Predicted age of each sample (rows) from its beta values (columns = CpG ids)."""
    missing = missing_cpgs(clock, betas.columns)
    if missing:
        raise MissingFeaturesError(
            f"{clock.name}: {len(missing)} of {len(clock.weights)} CpGs are missing from the "
            f"data (first: {missing[:5]}); they are not imputed")
    values = betas[clock.weights.index].to_numpy(dtype=float)
    if np.isnan(values).any():
        holes = betas[clock.weights.index].isna().sum()
        raise MissingFeaturesError(
            f"{clock.name}: {int(holes.sum())} missing values in {int((holes > 0).sum())} of its "
            f"CpGs (first: {list(holes[holes > 0].index[:5])}); they are not imputed")
    linear = values @ clock.weights.to_numpy()
    linear = linear + clock.intercept
    age = horvath_inverse_transform(linear) if clock.transform == "horvath" else linear
    return pd.Series(age, index=betas.index, name=f"{clock.name}_age")


# What happens to a clock CpG the data lacks (absent from the matrix) or a missing value (NaN).
MISSING_RULES = {
    "refuse": "an absent CpG or a missing value stops the clock; nothing is imputed",
    "dataset_mean": "a missing value takes its CpG's mean over the dataset's other samples; "
                    "an absent CpG still stops the clock",
    "reference": "a missing value takes its CpG's mean over the dataset's other samples; an "
                 "absent CpG takes its mean in a named reference dataset",
}


def missing_cpg_report(clock: LinearClock, betas: pd.DataFrame, rule: str = "refuse",
                       reference_name: str | None = None) -> dict:
    """What a dataset lacks for a clock: CpGs absent from it (count, share of the clock's CpGs,
    ids) and missing values of present CpGs, with the rule that will handle them."""
    if rule not in MISSING_RULES:
        raise ValueError(f"unknown missing-CpG rule {rule!r}; choose from {list(MISSING_RULES)}")
    absent = missing_cpgs(clock, betas.columns)
    present = [c for c in clock.weights.index if c in betas.columns]
    holes = betas[present].isna().sum()
    n = len(clock.weights)
    return {"clock": clock.name, "n_cpgs": n, "n_absent": len(absent),
            "share_absent": len(absent) / n, "absent": absent,
            "n_cpgs_with_missing_values": int((holes > 0).sum()),
            "n_missing_values": int(holes.sum()), "rule": rule,
            "rule_text": MISSING_RULES[rule], "reference": reference_name}


def apply_clock(clock: LinearClock, betas: pd.DataFrame, rule: str = "refuse",
                reference: pd.Series | None = None, reference_name: str | None = None
                ) -> tuple[pd.Series, dict]:
    """Predicted ages under a named missing-CpG rule (:data:`MISSING_RULES`), and the report of
    what was missing. ``reference`` (CpG -> beta) supplies absent CpGs under ``reference``."""
    report = missing_cpg_report(clock, betas, rule, reference_name)
    cpgs = clock.weights.index
    if rule == "refuse":
        return predict_age(clock, betas), report
    filled = betas.reindex(columns=cpgs).astype(float)
    present = filled.columns.difference(report["absent"], sort=False)
    means = filled[present].mean()
    empty = list(means.index[means.isna()])
    if empty:
        raise MissingFeaturesError(f"{clock.name}: CpGs {empty[:5]} have no value in any sample; "
                                   "no dataset mean exists for them")
    filled[present] = filled[present].fillna(means)
    if report["absent"]:
        if rule != "reference":
            raise MissingFeaturesError(
                f"{clock.name}: {report['n_absent']} of {report['n_cpgs']} CpGs are absent "
                f"(first: {report['absent'][:5]}); rule {rule!r} does not fill absent CpGs")
        if reference is None or reference.reindex(report["absent"]).isna().any():
            raise MissingFeaturesError(
                f"{clock.name}: the reference does not cover the {report['n_absent']} absent "
                f"CpGs (first: {report['absent'][:5]})")
        filled[report["absent"]] = reference.reindex(report["absent"]).to_numpy()
    return predict_age(clock, filled), report


def age_group(age: pd.Series) -> pd.Series:
    """GSE30870's two ends of life: newborns (age 0) and the oldest (89-103 years)."""
    return pd.Series(np.where(age == 0, "newborns", "aged 89-103"), index=age.index,
                     name="group")


def clock_on_gse30870(name: str = "horvath2013", adata=None) -> tuple[pd.DataFrame, dict]:
    """A published clock on the real GSE30870 methylomes (``adata``, loaded when not given;
    they carry all of its CpGs): one row per sample (age, predicted, error, group, data) and
    the age metrics. Every chapter that quotes this number calls this one function."""
    from helpers.common import metrics
    from helpers.data import loaders

    adata = loaders.load_gse30870() if adata is None else adata
    age = adata.obs["age"].astype(float)
    predicted = predict_age(load_clock(name), adata.to_df())
    frame = pd.DataFrame({"age": age, "predicted": predicted, "error": predicted - age,
                          "group": age_group(age), "data": "real (GSE30870)"})
    return frame.sort_values("age"), metrics.age_metrics(age, predicted)
