"""Simulator of the skeletal-muscle aging atlas of HallmarkAge Table 1 (Kedlian et al. 2024 is
out of reach): 17 donors, seven subsets, three acquisition batches, seven cell types with real
markers, negative-binomial counts on real gene symbols with baselines from the real GTEx muscle
profile, and planted hallmark programs that change with age in one cell type (the saved truth).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from helpers.common import designs, expression
from helpers.data.cache import cache_key, publish_folder
from helpers.data.formats import read_yaml
from helpers.data.registry import cache_dir
from helpers.hallmarkage import hallmark_sets
from helpers.paths import DATA

DESIGN_FILE = DATA / "simulator" / "muscle_atlas.yml"
PAPER_CELLS = 423_086
CHUNK = 20_000


def load_design(path: Path | str = DESIGN_FILE) -> dict:
    """The atlas design (YAML), checked for the sections the simulator reads."""
    design = read_yaml(path)
    for field in ("profiles", "donors", "subsets", "batches", "cell_types", "programs",
                  "null_hallmarks"):
        if field not in design:
            raise ValueError(f"{path}: lacks field {field!r}")
    return design


def hallmark_genes(reference: str, frameworks: dict) -> list[str]:
    """Genes of a 'Framework/hallmark' reference; an unknown reference is an error."""
    framework, _, hallmark = reference.partition("/")
    if hallmark not in frameworks.get(framework, {}):
        raise ValueError(f"unknown hallmark reference {reference!r} in the atlas design")
    return frameworks[framework][hallmark]


def program_genes(design: dict, frameworks: dict) -> dict[str, list[str]]:
    """Each planted program's genes: the union of its hallmarks minus every null hallmark's."""
    null = {g for ref in design["null_hallmarks"] for g in hallmark_genes(ref, frameworks)}
    programs = {}
    for name, program in design["programs"].items():
        genes = [g for ref in program["from"] for g in hallmark_genes(ref, frameworks)]
        programs[name] = [g for g in dict.fromkeys(genes) if g not in null]
    return programs


def largest_remainder(total: int, weights) -> np.ndarray:
    """Integer counts summing to ``total`` in proportion to ``weights``."""
    weights = np.asarray(weights, float) / np.sum(weights)
    raw = weights * total
    counts = np.floor(raw).astype(int)
    counts[np.argsort(raw - counts)[::-1][: total - counts.sum()]] += 1
    return counts


def subset_donors(design: dict, rng: np.random.Generator) -> dict[str, list[str]]:
    """The donors of each subset: all 17, or a seeded draw keeping the young/old balance."""
    ages = pd.Series(design["donors"], dtype=float)
    young = list(ages.index[ages < design["old_from_age"]])
    old = list(ages.index[ages >= design["old_from_age"]])
    chosen = {}
    for name, subset in design["subsets"].items():
        k = subset["donors"]
        if k >= len(ages):
            chosen[name] = list(ages.index)
            continue
        n_young = int(round(k * len(young) / len(ages)))
        chosen[name] = sorted(rng.choice(young, n_young, replace=False).tolist()
                              + rng.choice(old, k - n_young, replace=False).tolist())
    return chosen


def cell_sheet(design: dict, n_cells: int, rng: np.random.Generator) -> pd.DataFrame:
    """One row per simulated cell: dataset (subset), donor, age, age group, batch, cell type.
    Subset sizes and old/young shares follow Table 1, scaled to ``n_cells``."""
    ages = pd.Series(design["donors"], dtype=float)
    donors = subset_donors(design, rng)
    subsets = design["subsets"]
    sizes = largest_remainder(n_cells, [s["old"] + s["young"] for s in subsets.values()])
    parts = []
    for (name, subset), size in zip(subsets.items(), sizes, strict=True):
        n_old, n_young = largest_remainder(size, [subset["old"], subset["young"]])
        for group, n, members in (("old", n_old, [d for d in donors[name]
                                                   if ages[d] >= design["old_from_age"]]),
                                  ("young", n_young, [d for d in donors[name]
                                                      if ages[d] < design["old_from_age"]])):
            donor = rng.choice(members, n)
            batch = rng.choice(list(subset["batches"]), n, p=list(subset["batches"].values()))
            cell_type = rng.choice(list(subset["cell_types"]), n,
                                   p=np.array(list(subset["cell_types"].values()))
                                   / sum(subset["cell_types"].values()))
            parts.append(pd.DataFrame({"dataset": name, "donor": donor, "age_group": group,
                                       "batch": batch, "cell_type": cell_type}))
    sheet = pd.concat(parts, ignore_index=True)
    sheet["age"] = sheet["donor"].map(ages).astype(float)
    sheet.index = pd.Index([f"cell{i:06d}" for i in range(len(sheet))], name="cell")
    for column in ("dataset", "donor", "age_group", "batch", "cell_type"):
        sheet[column] = sheet[column].astype("category")
    return sheet[["donor", "age", "age_group", "dataset", "batch", "cell_type"]]


def gene_universe(muscle_log_cpm: pd.DataFrame, design: dict, frameworks: dict,
                  n_genes: int, rng: np.random.Generator) -> pd.Index:
    """Real gene symbols: every marker, stress and transcribed-hallmark gene (also those the
    GTEx muscle file lacks), then a seeded draw of the file's other genes up to ``n_genes``."""
    spec = hallmark_sets.read_spec()
    transcribed = [g for name, hallmarks in frameworks.items()
                   if name in spec["frameworks"] for genes in hallmarks.values() for g in genes]
    available = set(muscle_log_cpm.columns)
    must = [m for ct in design["cell_types"].values() for m in ct["markers"]]
    must += design["dissociation_stress"]["genes"]
    must += hallmark_sets.resolve_aliases(transcribed, available, spec["aliases"])
    must = list(dict.fromkeys(must))
    if len(must) > n_genes:
        raise ValueError(f"n_genes={n_genes} is below the {len(must)} required genes")
    others = sorted(available - set(must))
    extra = rng.choice(others, min(n_genes - len(must), len(others)), replace=False)
    return pd.Index(sorted([*must, *extra]), name="gene")


def baseline_log2(muscle_log_cpm: pd.DataFrame, genes: pd.Index, rng: np.random.Generator,
                  assumed_log2_sd: float = 1.0) -> pd.DataFrame:
    """Per gene: log2 baseline abundance and its source. Real: the mean GTEx muscle CPM
    (floored at 0.05). Genes the file lacks get an assumed baseline, the file's median CPM with
    a seeded log2 spread, and are labelled as such."""
    real = genes.intersection(muscle_log_cpm.columns)
    cpm = (2.0 ** muscle_log_cpm[real] - 1).mean().clip(lower=0.05)
    log2 = pd.Series(np.nan, index=genes)
    log2[real] = np.log2(cpm)
    absent = log2.isna().to_numpy()
    log2[absent] = np.log2(cpm.median()) + rng.normal(0, assumed_log2_sd, absent.sum())
    source = np.where(absent, "assumed (not in the GTEx muscle file)", "real GTEx muscle")
    return pd.DataFrame({"baseline_log2_cpm": log2, "baseline_source": source}, index=genes)


def _gene_mask(genes: pd.Index, members) -> np.ndarray:
    return genes.isin(list(members))


def type_offsets(design: dict, frameworks: dict, genes: pd.Index,
                 rng: np.random.Generator) -> pd.DataFrame:
    """log2 offset per cell type x gene: identity noise, own markers up, other types' markers
    down, and the baseline identity programs (e.g. inflammatory genes higher in immune cells)."""
    types = list(design["cell_types"])
    offsets = rng.normal(0, design["cell_type_log2_sd"], (len(types), len(genes)))
    all_markers = {t: _gene_mask(genes, c["markers"]) for t, c in design["cell_types"].items()}
    for i, t in enumerate(types):
        for other, mask in all_markers.items():
            offsets[i, mask] = (design["marker_log2_fold_change"] if other == t
                                else design["foreign_marker_log2_fold_change"])
        identity = design.get("identity_programs", {}).get(t)
        if identity:
            members = {g for ref in identity["from"] for g in hallmark_genes(ref, frameworks)}
            offsets[i, _gene_mask(genes, members)] += identity["log2_fold_change"]
    return pd.DataFrame(offsets, index=types, columns=genes)


def batch_offsets(design: dict, genes: pd.Index, rng: np.random.Generator) -> pd.DataFrame:
    """log2 capture bias per batch x gene, plus the dissociation-stress genes of single cells."""
    rows = {b: rng.normal(0, c["capture_log2_sd"], len(genes)) if c["capture_log2_sd"] > 0
            else np.zeros(len(genes)) for b, c in design["batches"].items()}
    stress = design["dissociation_stress"]
    rows[stress["batch"]][_gene_mask(genes, stress["genes"])] += stress["log2_fold_change"]
    return pd.DataFrame(rows, index=genes).T


def hidden_program_genes(design: dict, frameworks: dict, baseline: pd.DataFrame,
                         rng: np.random.Generator) -> dict[str, list[str]]:
    """Genes of each program planted outside the frameworks: a seeded draw among genes with a
    real baseline at or above the median that no hallmark set, marker or stress list names."""
    named = {g for hallmarks in frameworks.values() for genes in hallmarks.values() for g in genes}
    named |= {m for ct in design["cell_types"].values() for m in ct["markers"]}
    named |= set(design["dissociation_stress"]["genes"])
    real = baseline[baseline["baseline_source"] == "real GTEx muscle"]["baseline_log2_cpm"]
    pool = sorted(g for g in real.index[real >= real.median()] if g not in named)
    hidden = {}
    for name, program in design.get("hidden_programs", {}).items():
        if program["n_genes"] > len(pool):
            raise ValueError(f"hidden program {name!r} asks for {program['n_genes']} genes; "
                             f"only {len(pool)} unnamed expressed genes are in the atlas")
        hidden[name] = sorted(rng.choice(pool, program["n_genes"], replace=False).tolist())
        pool = [g for g in pool if g not in hidden[name]]
    return hidden


def program_activity(sheet: pd.DataFrame, design: dict, rng: np.random.Generator,
                     section: str = "programs") -> pd.DataFrame:
    """Per cell and planted program of ``section``: the log2 shift of the program's genes (0
    outside its cell type): slope x (age - mid age) / 10 plus a per-cell activity."""
    out = {}
    for name, program in design.get(section, {}).items():
        inside = (sheet["cell_type"] == program["cell_type"]).to_numpy()
        trend = program["log2_per_decade"] * (sheet["age"].to_numpy() - design["mid_age"]) / 10
        noise = rng.normal(0, design["cell_activity_log2_sd"], len(sheet))
        out[name] = np.where(inside, trend + noise, 0.0)
    return pd.DataFrame(out, index=sheet.index)


def nb_counts(log2_mean: np.ndarray, library: np.ndarray, dispersion: float,
              rng: np.random.Generator) -> sp.csr_matrix:
    """Negative-binomial (gamma-Poisson) counts: each cell's relative abundances scaled to its
    library size."""
    relative = np.exp2(log2_mean)
    relative /= relative.sum(axis=1, keepdims=True)
    mu = relative * library[:, None]
    shape = 1.0 / dispersion
    counts = rng.poisson(rng.gamma(shape, mu / shape)).astype(np.float32)
    return sp.csr_matrix(counts)


@dataclass
class Atlas:
    """A simulated atlas: AnnData (X log-normalised, layers['counts']) and its planted truth."""

    adata: ad.AnnData
    programs: pd.DataFrame  # program, cell_type, log2_per_decade, in_hallmark_sets, genes

    def save(self, folder: Path) -> None:
        """Write atlas.h5ad and programs.csv into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.adata.write_h5ad(folder / "atlas.h5ad")
        self.programs.to_csv(folder / "programs.csv", index=False)

    @classmethod
    def load(cls, folder: Path) -> Atlas:
        """Read an atlas written by :meth:`save`."""
        return cls(ad.read_h5ad(folder / "atlas.h5ad"),
                   pd.read_csv(folder / "programs.csv"))


def simulate(muscle_log_cpm: pd.DataFrame, frameworks: dict, design: dict, sizes: dict,
             seed: int) -> Atlas:
    """Simulate the atlas: every random step draws from streams of ``seed``."""
    streams = [np.random.default_rng([seed, i]) for i in range(6)]
    sheet = cell_sheet(design, sizes["n_cells"], streams[0])
    genes = gene_universe(muscle_log_cpm, design, frameworks, sizes["n_genes"], streams[1])
    baseline = baseline_log2(muscle_log_cpm, genes, streams[1])
    base = baseline["baseline_log2_cpm"].to_numpy()
    by_type = type_offsets(design, frameworks, genes, streams[2])
    by_batch = batch_offsets(design, genes, streams[2])
    by_donor = pd.DataFrame(streams[3].normal(0, design["donor_log2_sd"],
                                              (len(design["donors"]), len(genes))),
                            index=list(design["donors"]), columns=genes)
    programs = program_genes(design, frameworks)
    activity = program_activity(sheet, design, streams[4])
    # programs outside the frameworks draw from their own stream: the others stay as they were
    hidden_stream = np.random.default_rng([seed, 6])
    hidden = hidden_program_genes(design, frameworks, baseline, hidden_stream)
    programs |= hidden
    activity = activity.join(program_activity(sheet, design, hidden_stream, "hidden_programs"))
    masks = {name: _gene_mask(genes, members) for name, members in programs.items()}
    library = np.exp(np.log(sheet["batch"].map(
        {b: c["library_median"] for b, c in design["batches"].items()}).to_numpy(float))
        + streams[5].normal(0, 1, len(sheet)) * sheet["batch"].map(
        {b: c["library_log_sd"] for b, c in design["batches"].items()}).to_numpy(float))
    chunks = []
    for start in range(0, len(sheet), CHUNK):
        rows = sheet.iloc[start:start + CHUNK]
        log2_mean = (base + by_type.loc[rows["cell_type"].astype(str)].to_numpy()
                     + by_batch.loc[rows["batch"].astype(str)].to_numpy()
                     + by_donor.loc[rows["donor"].astype(str)].to_numpy())
        for name, mask in masks.items():
            log2_mean[:, mask] += activity[name].to_numpy()[start:start + CHUNK, None]
        chunks.append(nb_counts(log2_mean, library[start:start + CHUNK],
                                design["dispersion"], streams[5]))
    counts = sp.vstack(chunks).tocsr()
    adata = ad.AnnData(X=counts.copy(), obs=sheet, var=baseline)
    adata.layers["counts"] = counts
    adata.obsm["planted_activity"] = activity.to_numpy(np.float32)
    adata.uns["planted_programs"] = list(activity.columns)
    adata.uns["data"] = "simulated"
    normalise_log(adata)
    table = pd.DataFrame([{"program": name, "cell_type": p["cell_type"],
                           "log2_per_decade": p["log2_per_decade"],
                           "in_hallmark_sets": section == "programs",
                           "genes": ";".join(programs[name])}
                          for section in ("programs", "hidden_programs")
                          for name, p in design.get(section, {}).items()])
    return Atlas(adata, table)


def normalise_log(adata: ad.AnnData, target_sum: float = 1e4) -> None:
    """X <- log1p(counts scaled to ``target_sum`` per cell), float32 sparse (scanpy's recipe)."""
    import scanpy as sc

    adata.X = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
    adata.uns.pop("log1p", None)


def hallmark_truth(report: pd.DataFrame, programs: pd.DataFrame, null_hallmarks: list[str],
                   driven_fraction: float = 0.5) -> pd.DataFrame:
    """Planted status of each kept hallmark: the share of its detected genes in each program;
    'up' / 'down' in a program's cell type when that share is >= ``driven_fraction``, 'null'
    when it is a designed null hallmark (no gene in any program), else 'partial' or 'none'."""
    members = {row.program: set(row.genes.split(";")) for row in programs.itertuples()}
    rows = []
    for r in report[report["kept"]].itertuples():
        detected = set(r.detected)
        shares = {p: len(detected & g) / len(detected) for p, g in members.items()}
        best = max(shares, key=shares.get)
        program = programs.set_index("program").loc[best]
        if f"{r.framework}/{r.hallmark}" in null_hallmarks:
            status, cell_type = "null", ""
        elif shares[best] >= driven_fraction:
            status = "up" if program["log2_per_decade"] > 0 else "down"
            cell_type = program["cell_type"]
        else:
            status = "partial" if shares[best] > 0 else "none"
            cell_type = program["cell_type"] if shares[best] > 0 else ""
        rows.append({"framework": r.framework, "hallmark": r.hallmark, "status": status,
                     "program": best if shares[best] > 0 else "", "cell_type": cell_type,
                     "planted_share": round(shares[best], 3)})
    return pd.DataFrame(rows)


def code_version() -> str:
    """Hash of the simulator's code, design and gene-set files: cached atlases follow them."""
    digest = hashlib.sha256()
    for path in (Path(__file__), DESIGN_FILE, hallmark_sets.FRAMEWORKS_FILE,
                 hallmark_sets.OPENGENES_FILE, Path(expression.__file__)):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def atlas_folder(profile: str = "quick", seed: int = 0, **overrides) -> Path:
    """Cache folder of a profile's atlas (atlas.h5ad, programs.csv), keyed by sizes, seed and
    the simulator's code."""
    sizes = designs.profile_sizes(profile, load_design(), **overrides)
    key = cache_key("muscle-atlas", {"sizes": sizes, "seed": seed, "code": code_version()})
    return cache_dir() / "simulated" / f"muscle-atlas-{key}"


def atlas_for(profile: str = "quick", seed: int = 0, **overrides) -> Atlas:
    """The simulated atlas of a profile and seed, generated once, then read from the cache."""
    design = load_design()
    sizes = designs.profile_sizes(profile, design, **overrides)
    folder = atlas_folder(profile, seed, **overrides)
    if (folder / "programs.csv").is_file():
        return Atlas.load(folder)
    log_cpm, _, _ = expression.real_muscle_log_cpm()
    atlas = simulate(log_cpm, hallmark_sets.load_frameworks(), design, sizes, seed)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")  # one per process
    shutil.rmtree(partial, ignore_errors=True)
    atlas.save(partial)
    (partial / "settings.json").write_text(json.dumps({"sizes": sizes, "seed": seed}))
    publish_folder(partial, folder, "programs.csv")
    return atlas


def age_effects(scores: pd.DataFrame, obs: pd.DataFrame, prefix: str = "score",
                min_cells: int = 5) -> pd.DataFrame:
    """Per cell type x hallmark: old minus young donors' mean score, its standardised size
    (over the pooled SD of donor means) and Welch's t-test p-value. Scores are centred within
    cell type x batch first, so the batches' different capture cannot pose as age."""
    frame = scores.copy()
    frame.columns = [c.removeprefix(f"{prefix}_") for c in frame.columns]
    keys = [obs["cell_type"].astype(str).to_numpy(), obs["batch"].astype(str).to_numpy()]
    centred = frame - frame.groupby(keys).transform("mean")
    counts = obs.groupby(["cell_type", "donor"], observed=True).size()
    donor_means = centred.groupby([keys[0], obs["donor"].astype(str).to_numpy()]).mean()
    old = obs.drop_duplicates("donor").set_index("donor")["age_group"].astype(str)
    rows = []
    for cell_type, table in donor_means.groupby(level=0):
        table = table.droplevel(0)
        enough = [d for d in table.index if counts.get((cell_type, d), 0) >= min_cells]
        table = table.loc[enough]
        is_old = old.reindex(table.index).to_numpy() == "old"
        if is_old.sum() < 2 or (~is_old).sum() < 2:
            continue
        for hallmark in table.columns:
            a, b = table.loc[is_old, hallmark], table.loc[~is_old, hallmark]
            pooled = np.sqrt((a.var() * (len(a) - 1) + b.var() * (len(b) - 1))
                             / (len(a) + len(b) - 2))
            rows.append({"cell_type": cell_type, "hallmark": hallmark,
                         "old_minus_young": a.mean() - b.mean(),
                         "effect_size": (a.mean() - b.mean()) / pooled if pooled > 0 else 0.0,
                         "p_value": stats.ttest_ind(a, b, equal_var=False).pvalue,
                         "donors_old": len(a), "donors_young": len(b)})
    return pd.DataFrame(rows)


def truth_recovery(effects: pd.DataFrame, truth: pd.DataFrame, alpha: float = 0.05
                   ) -> pd.DataFrame:
    """Planted hallmarks in their cell type and null hallmarks in every cell type, each with its
    measured effect and whether it behaves as planted (planted: right sign and p < alpha;
    null: p >= alpha)."""
    truth = truth.assign(hallmark=truth["framework"] + "__" + truth["hallmark"])
    planted = truth[truth["status"].isin(["up", "down"])]
    rows = planted.merge(effects, on=["hallmark", "cell_type"], how="left")
    rows["recovered"] = ((np.sign(rows["old_minus_young"])
                          == np.where(rows["status"] == "up", 1, -1))
                         & (rows["p_value"] < alpha))
    nulls = truth[truth["status"] == "null"].drop(columns="cell_type").merge(
        effects, on="hallmark", how="left")
    nulls["recovered"] = nulls["p_value"] >= alpha
    columns = ["hallmark", "status", "cell_type", "old_minus_young", "effect_size", "p_value",
               "donors_old", "donors_young", "recovered"]
    return pd.concat([rows[columns], nulls[columns]], ignore_index=True)


def cohort_table(obs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Table 1 beside the paper's (``published``, indexed by subset with a Total row): donors,
    old, young and all cells per subset of the simulated atlas, and each subset's cell share."""
    old = (obs["age_group"] == "old").to_numpy()
    groups = obs.assign(old=old, young=~old).groupby("dataset", observed=True)
    ours = pd.DataFrame({"donors": groups["donor"].nunique(), "old_cells": groups["old"].sum(),
                         "young_cells": groups["young"].sum()})
    ours.loc["Total"] = [obs["donor"].nunique(), int(old.sum()), int((~old).sum())]
    ours["cells"] = ours["old_cells"] + ours["young_cells"]
    table = published.join(ours, rsuffix=" (ours)", how="left")
    table["share of cells, paper"] = (published["cells"] / published.loc["Total", "cells"]
                                      ).round(3)
    table["share of cells, ours"] = (table["cells (ours)"] / len(obs)).round(3)
    return table
