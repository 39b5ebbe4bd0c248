"""Published linear DNA-methylation clocks (Horvath 2013/2018, Hannum 2013, PhenoAge 2018).

Weights come from the registry's real files; a clock is applied only to samples that carry all
of its CpGs: missing CpGs are reported, never imputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers.loaders import DataFormatError
from helpers.registry import fetch, load_registry

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
    linear = betas[clock.weights.index].to_numpy(dtype=float) @ clock.weights.to_numpy()
    linear = linear + clock.intercept
    age = horvath_inverse_transform(linear) if clock.transform == "horvath" else linear
    return pd.Series(age, index=betas.index, name=f"{clock.name}_age")
