"""Published linear clocks: the DNA-methylation ones the registry holds (Horvath 2013/2018,
Hannum 2013, PhenoAge 2018) and any linear clock a user brings, on CpG or gene features (for
example a transcriptomic signature: an intercept and coefficients on log2(FPKM + 1)).

One code path serves every clock: its features are matched by name, a missing one is reported
(count, share, ids) and by default stops the clock; :func:`apply_clock` can instead follow a
named rule for absent features and missing values, and always returns the report of what was
missing and what the rule did. Values are checked against the clock's unit (beta values in
[0, 1], log-scale expression, counts) before anything is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.common import expression
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
TRANSFORMS = ("identity", "horvath")
# unit -> what a value must satisfy before the weights touch it
UNITS = {
    "beta": "beta values in [0, 1] (methylated fraction), finite",
    "log": "log-scale expression (e.g. log2(FPKM + 1)): finite, no value above 30",
    "counts": "read counts: non-negative integers",
    "any": "finite numbers, no further check",
}


class MissingFeaturesError(KeyError):
    """Samples lack features a model needs; the message lists them (nothing is imputed)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class LinearClock:
    """A linear clock: age = transform(intercept + sum(value * weight)) over named features
    (``feature``: what they are, e.g. CpG or gene; ``unit``: a key of :data:`UNITS`)."""

    name: str
    weights: pd.Series
    intercept: float
    transform: str
    provenance: dict = field(default_factory=dict)
    feature: str = "CpG"
    unit: str = "beta"

    def __post_init__(self):
        if len(self.weights) == 0:
            raise ValueError(f"clock {self.name}: no features (a clock of its intercept alone "
                             "predicts one age for everyone)")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"clock {self.name}: unknown transform {self.transform!r}; "
                             f"choose from {TRANSFORMS}")
        if self.unit not in UNITS:
            raise ValueError(f"clock {self.name}: unknown unit {self.unit!r}; choose from "
                             f"{list(UNITS)}")
        if self.weights.index.has_duplicates:
            raise ValueError(f"clock {self.name}: duplicated features "
                             f"{list(self.weights.index[self.weights.index.duplicated()][:5])}")
        if not np.isfinite(self.weights.to_numpy(float)).all():
            raise ValueError(f"clock {self.name}: weights must be finite numbers")

    @property
    def features(self) -> str:
        """What the clock's features are called, plural (for messages)."""
        return f"{self.feature}s"


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
    for column in ("CpGmarker", "CoefficientTraining"):
        if column not in table.columns:
            raise DataFormatError(f"{path}: missing field {column!r}")
    weights = table.set_index("CpGmarker")["CoefficientTraining"].astype(float)
    if "intercept" in weights.index:
        intercept = float(weights.pop("intercept"))
    if intercept is None:
        raise DataFormatError(f"{path}: clock {name} needs an `intercept` row")
    if weights.index.has_duplicates:
        raise DataFormatError(f"{path}: field CpGmarker has duplicated CpGs")
    return LinearClock(name, weights, float(intercept), transform,
                       load_registry()[key].provenance, feature="CpG", unit="beta")


def linear_clock(name: str, weights, intercept: float = 0.0, transform: str = "identity",
                 feature: str = "gene", unit: str = "log", provenance: dict | None = None
                 ) -> LinearClock:
    """A clock from its published coefficients (feature -> weight) and intercept, e.g. a
    transcriptomic signature on log2(FPKM + 1) (``feature="gene", unit="log"``)."""
    weights = pd.Series(weights, dtype=float)
    weights.index = weights.index.astype(str)
    return LinearClock(name, weights, float(intercept), transform, dict(provenance or {}),
                       feature, unit)


def read_linear_clock(path: Path | str, name: str, feature_column: str, weight_column: str,
                      intercept: float | None = None, intercept_row: str = "intercept",
                      **kwargs) -> LinearClock:
    """A linear clock from a table (CSV or TSV) of features and weights, as published in a
    supplementary table; the intercept is ``intercept`` or the table's ``intercept_row``.
    ``kwargs`` go to :func:`linear_clock` (transform, feature, unit). Errors name the file
    and the field."""
    path = Path(path)
    table = pd.read_csv(path, sep=None, engine="python")
    for column in (feature_column, weight_column):
        if column not in table.columns:
            raise DataFormatError(f"{path}: missing field {column!r} (found "
                                  f"{list(table.columns)})")
    weights = pd.to_numeric(table.set_index(feature_column)[weight_column], errors="coerce")
    if weights.isna().any():
        bad = list(weights.index[weights.isna()][:3])
        raise DataFormatError(f"{path}: field {weight_column!r} is not a number for {bad}")
    if intercept_row in weights.index:
        if intercept is not None:
            raise DataFormatError(f"{path}: an {intercept_row!r} row and an intercept "
                                  "argument: give one")
        intercept = float(weights.pop(intercept_row))
    if weights.index.has_duplicates:
        raise DataFormatError(f"{path}: field {feature_column!r} repeats "
                              f"{list(weights.index[weights.index.duplicated()][:3])}")
    return linear_clock(name, weights, 0.0 if intercept is None else intercept,
                        provenance={"source": str(path)}, **kwargs)


def missing_features(clock: LinearClock, features) -> list[str]:
    """The clock's features absent from ``features``, in the clock's order."""
    present = set(map(str, features))
    return [c for c in clock.weights.index if c not in present]


def clock_coverage(clock: LinearClock, features) -> dict:
    """How many of the clock's features a dataset carries (count and share missing)."""
    missing = missing_features(clock, features)
    n = len(clock.weights)
    return {"clock": clock.name, "feature": clock.feature, "n_features": n,
            "n_missing": len(missing), "share_missing": len(missing) / n, "missing": missing}


def check_units(clock: LinearClock, values: pd.DataFrame) -> None:
    """Refuse values outside the clock's unit (:data:`UNITS`), naming the clock, the unit
    expected and the first offending feature: M-values or percentages given to a beta clock,
    raw counts to a log-scale one, infinities to any."""
    array = values.to_numpy(dtype=float)
    finite = np.isfinite(array) | np.isnan(array)  # NaN is a missing value, handled apart
    if not finite.all():
        column = values.columns[np.argmax(~finite.all(axis=0))]
        raise ValueError(f"{clock.name}: infinite value in feature {column!r}; expected "
                         f"{UNITS[clock.unit]}")
    present = array[~np.isnan(array)]
    if present.size == 0:
        return
    if clock.unit == "beta" and (present.min() < 0 or present.max() > 1):
        column = values.columns[np.argmax(((values < 0) | (values > 1)).any().to_numpy())]
        raise ValueError(f"{clock.name}: value outside [0, 1] in feature {column!r} (range "
                         f"{present.min():.3g} to {present.max():.3g}); expected "
                         f"{UNITS['beta']}: M-values or percentages must be converted first")
    if clock.unit == "log" and present.max() > expression.LOG_SCALE_MAX:
        raise ValueError(f"{clock.name}: values up to {present.max():.3g}; expected "
                         f"{UNITS['log']}: these look unlogged")
    if clock.unit == "counts":
        expression.require_counts(values.fillna(0), f"{clock.name} input")


def predict_age(clock: LinearClock, values: pd.DataFrame) -> pd.Series:
    """Predicted age of each sample (rows) from its feature values (columns named as the
    clock's features), after the unit check; an absent feature or a missing value stops it."""
    missing = missing_features(clock, values.columns)
    if missing:
        raise MissingFeaturesError(
            f"{clock.name}: {len(missing)} of {len(clock.weights)} features ({clock.features}) "
            f"are missing from the data (first: {missing[:5]}); they are not imputed")
    block = values[clock.weights.index]
    check_units(clock, block)
    matrix = block.to_numpy(dtype=float)
    if np.isnan(matrix).any():
        holes = block.isna().sum()
        raise MissingFeaturesError(
            f"{clock.name}: {int(holes.sum())} missing values in {int((holes > 0).sum())} of its "
            f"features (first: {list(holes[holes > 0].index[:5])}); they are not imputed")
    linear = matrix @ clock.weights.to_numpy() + clock.intercept
    age = horvath_inverse_transform(linear) if clock.transform == "horvath" else linear
    return pd.Series(age, index=values.index, name=f"{clock.name}_age")


# What happens to a clock feature the data lacks (absent from the matrix) or a missing value.
MISSING_RULES = {
    "refuse": "an absent feature or a missing value stops the clock; nothing is imputed",
    "dataset_mean": "a missing value takes its feature's mean over the dataset's other "
                    "samples; an absent feature still stops the clock",
    "reference": "a missing value takes its feature's mean over the dataset's other samples; "
                 "an absent feature takes its mean in a named reference dataset",
}


def missing_feature_report(clock: LinearClock, values: pd.DataFrame, rule: str = "refuse",
                           reference_name: str | None = None) -> dict:
    """What a dataset lacks for a clock: features absent from it (count, share of the clock's
    features, ids) and missing values of present features, with the rule that handles them."""
    if rule not in MISSING_RULES:
        raise ValueError(f"unknown missing-feature rule {rule!r}; choose from "
                         f"{list(MISSING_RULES)}")
    absent = missing_features(clock, values.columns)
    present = [c for c in clock.weights.index if c in values.columns]
    holes = values[present].isna().sum()
    n = len(clock.weights)
    return {"clock": clock.name, "feature": clock.feature, "n_features": n,
            "n_absent": len(absent), "share_absent": len(absent) / n, "absent": absent,
            "n_features_with_missing_values": int((holes > 0).sum()),
            "n_missing_values": int(holes.sum()), "rule": rule,
            "rule_text": MISSING_RULES[rule], "reference": reference_name}


def apply_clock(clock: LinearClock, values: pd.DataFrame, rule: str = "refuse",
                reference: pd.Series | None = None, reference_name: str | None = None
                ) -> tuple[pd.Series, dict]:
    """Predicted ages under a named missing-feature rule (:data:`MISSING_RULES`), and the
    report of what was missing. ``reference`` (feature -> value) supplies absent features
    under ``reference``."""
    report = missing_feature_report(clock, values, rule, reference_name)
    features = clock.weights.index
    if rule == "refuse":
        return predict_age(clock, values), report
    filled = values.reindex(columns=features).astype(float)
    present = filled.columns.difference(report["absent"], sort=False)
    means = filled[present].mean()
    empty = list(means.index[means.isna()])
    if empty:
        raise MissingFeaturesError(f"{clock.name}: features {empty[:5]} have no value in any "
                                   "sample; no dataset mean exists for them")
    filled[present] = filled[present].fillna(means)
    if report["absent"]:
        if rule != "reference":
            raise MissingFeaturesError(
                f"{clock.name}: {report['n_absent']} of {report['n_features']} features "
                f"({clock.features}) are absent (first: {report['absent'][:5]}); rule "
                f"{rule!r} does not fill absent features")
        if reference is None or reference.reindex(report["absent"]).isna().any():
            raise MissingFeaturesError(
                f"{clock.name}: the reference does not cover the {report['n_absent']} absent "
                f"features (first: {report['absent'][:5]})")
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
