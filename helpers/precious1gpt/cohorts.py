"""Sample sheets of the simulated Precious1GPT cohorts: the paper's tissue mix per modality
(Supplementary Table 2), ages (methylation 0-110; expression GTEx decade brackets with the exact
age kept), donors, batches, and the case-control, iPSC and fetal designs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.formats import age_from_gestational_weeks, read_yaml
from helpers.data.gtex import age_bracket_midpoint
from helpers.paths import DATA

DESIGN_FILE = DATA / "simulator" / "precious1gpt.yml"
SUPP_TABLE_2 = DATA / "published" / "precious1gpt_supp_table2.csv"


def load_design(path: Path | str = DESIGN_FILE) -> dict:
    """The simulator's design file (modelling choices, sizes per profile)."""
    return read_yaml(path)


def tissue_mix(modality: str) -> pd.Series:
    """Share of each tissue within a modality, from the published test counts (Supp. Table 2)."""
    table = pd.read_csv(SUPP_TABLE_2, comment="#")
    counts = table[table["modality"] == modality].set_index("tissue")["test_samples"]
    if counts.empty:
        raise ValueError(f"no tissues for modality {modality!r} in {SUPP_TABLE_2}")
    return counts / counts.sum()


def allocate(n: int, shares: pd.Series, minimum: int = 0) -> pd.Series:
    """Split ``n`` samples by ``shares`` (largest remainder), each group at least ``minimum``."""
    if n < minimum * len(shares):
        raise ValueError(f"{n} samples cannot give {len(shares)} groups {minimum} each")
    spare = n - minimum * len(shares)
    exact = shares / shares.sum() * spare
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts).to_numpy(), kind="stable")
    counts.iloc[order[: spare - counts.sum()]] += 1
    return counts + minimum


def methylation_ages(n: int, ages: dict, rng: np.random.Generator) -> np.ndarray:
    """Ages 0-``max``: a share of children (uniform 0-``child_max``), adults ~ normal."""
    child = rng.random(n) < ages["child_share"]
    adult = rng.normal(ages["adult_mean"], ages["adult_sd"], n)
    while ((adult < ages["child_max"]) | (adult > ages["max"])).any():
        bad = (adult < ages["child_max"]) | (adult > ages["max"])
        adult[bad] = rng.normal(ages["adult_mean"], ages["adult_sd"], bad.sum())
    return np.where(child, rng.uniform(0, ages["child_max"], n), adult).round(1)


def bracket_shares(real_counts: pd.Series, share_70_79: float) -> pd.Series:
    """GTEx decade shares: the real 20-69 shares, rescaled, plus a share for 70-79."""
    shares = real_counts / real_counts.sum() * (1 - share_70_79)
    shares["70-79"] = share_70_79
    return shares


def methylation_sheet(n: int, design: dict, rng: np.random.Generator) -> pd.DataFrame:
    """One row per simulated methylome: tissue (paper's mix), exact age, one donor each."""
    counts = allocate(n, tissue_mix("methylation"), design["min_samples_per_tissue"])
    tissue = rng.permutation(np.repeat(counts.index.to_numpy(), counts.to_numpy()))
    age = methylation_ages(n, design["methylation"]["ages"], rng)
    ids = [f"M{i:05d}" for i in range(n)]
    return pd.DataFrame({"modality": "methylation", "tissue": tissue, "age": age,
                         "age_reported": age, "age_bracket": "", "donor": ids, "batch": "none"},
                        index=pd.Index(ids, name="sample"))


def expression_sheet(n: int, design: dict, shares: pd.Series,
                     rng: np.random.Generator) -> pd.DataFrame:
    """One row per simulated transcriptome: tissue (paper's mix), a donor whose exact age lies in
    a GTEx decade bracket (reported as the bracket and its midpoint), a sequencing batch."""
    cfg = design["expression"]
    counts = allocate(n, tissue_mix("expression"), design["min_samples_per_tissue"])
    tissue = rng.permutation(np.repeat(counts.index.to_numpy(), counts.to_numpy()))
    n_donors = max(1, int(np.ceil(n / cfg["samples_per_donor"])))
    bracket = rng.choice(shares.index.to_numpy(), size=n_donors, p=shares.to_numpy())
    low = np.array([int(b.split("-")[0]) for b in bracket])
    donor_age = low + rng.uniform(0, 10, n_donors)
    donor = rng.integers(0, n_donors, n)
    ids = [f"E{i:05d}" for i in range(n)]
    return pd.DataFrame({
        "modality": "expression", "tissue": tissue, "age": donor_age[donor],
        "age_reported": [age_bracket_midpoint(b) for b in bracket[donor]],
        "age_bracket": bracket[donor],
        "donor": [f"D{d:04d}" for d in donor],
        "batch": [f"B{b}" for b in rng.integers(0, cfg["n_batches"], n)],
    }, index=pd.Index(ids, name="sample"))


def disease_sheet(name: str, n_per_arm: int, design: dict,
                  rng: np.random.Generator) -> pd.DataFrame:
    """Cases and controls of one disease, age-matched (uniform), in the disease's tissue."""
    spec, model = design["diseases"][name], design["disease_model"]
    n = 2 * n_per_arm
    age = rng.uniform(*model["ages"], n).round(1)
    status = np.repeat(["control", "case"], n_per_arm)
    ids = [f"{name[:4].upper()}{i:04d}" for i in range(n)]
    return pd.DataFrame({"modality": "expression", "tissue": spec["tissue"], "age": age,
                         "status": status, "case": (status == "case").astype(int),
                         "biological_age": age + np.where(status == "case",
                                                          model["age_acceleration"], 0.0)},
                        index=pd.Index(ids, name="sample"))


def ipsc_sheet(replicates: int, design: dict) -> pd.DataFrame:
    """Reprogramming time course: days after transfection plus iPSC, with the planted
    epigenetic age (donor age falling logistically to zero; iPSC at zero)."""
    cfg = design["ipsc"]
    days = np.repeat(np.asarray(cfg["days"], float), replicates)
    fall = 1 / (1 + np.exp((days - cfg["midpoint_day"]) / cfg["steepness_days"]))
    start = 1 / (1 + np.exp(-cfg["midpoint_day"] / cfg["steepness_days"]))
    epigenetic = cfg["donor_age"] * fall / start
    stage = [f"day {d:g}" for d in days] + ["iPSC"] * replicates
    n = len(stage)
    return pd.DataFrame({
        "modality": "methylation", "tissue": cfg["tissue"], "stage": stage,
        "day": np.concatenate([days, np.full(replicates, np.nan)]),
        "age": cfg["donor_age"], "epigenetic_age": np.concatenate([epigenetic,
                                                                   np.zeros(replicates)]),
    }, index=pd.Index([f"IPSC{i:03d}" for i in range(n)], name="sample"))


def fetal_sheet(replicates: int, design: dict) -> pd.DataFrame:
    """Fetal tissues over weeks after last menstruation; age in years (negative before birth)."""
    cfg = design["fetal"]
    grid = [(t, w) for t in cfg["tissues"] for w in cfg["weeks"] for _ in range(replicates)]
    weeks = np.array([w for _, w in grid], float)
    return pd.DataFrame({
        "modality": "methylation", "tissue": [t for t, _ in grid], "weeks": weeks,
        "age": age_from_gestational_weeks(weeks),
    }, index=pd.Index([f"FET{i:03d}" for i in range(len(grid))], name="sample"))

