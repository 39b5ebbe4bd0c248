"""The real-anchored Precious1GPT cohort simulator.

Genes are real TSS200 genes (expression: the protein-coding ones); methylation baselines, age
effects and noise come from the real GSE30870 gene-level matrix where a gene is covered and are
resampled from those real values otherwise; expression baselines and spread come from the real
GTEx muscle profile. Promoter methylation and expression of shared age genes move in opposite
directions. Methylation follows Horvath's age transform (logarithmic in childhood, linear after
20) on the logit scale with beta-distributed noise. The planted truth is kept in ``truth``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy.special import expit, logit

from helpers.common import designs
from helpers.common.clocks import horvath_transform
from helpers.data import loaders
from helpers.data.cache import cache_key, publish_folder
from helpers.data.registry import cache_dir
from helpers.precious1gpt import anchors, cohorts

CHUNK = 1024  # samples generated per random stream (fixed, so results do not depend on memory)


@dataclass
class Cohorts:
    """Simulated cohorts from one generator, with the planted truth."""

    methylation: ad.AnnData
    expression: ad.AnnData
    diseases: dict[str, ad.AnnData]
    ipsc: ad.AnnData
    fetal: ad.AnnData
    truth: pd.DataFrame
    pathways: pd.DataFrame
    settings: dict = field(default_factory=dict)

    def save(self, folder: Path | str) -> Path:
        """Write every cohort (h5ad), the planted truth (csv) and the settings (json)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, adata in self._named().items():
            adata.write_h5ad(folder / f"{name}.h5ad")
        self.truth.to_csv(folder / "truth_genes.csv")
        self.pathways.to_csv(folder / "planted_pathways.csv", index=False)
        (folder / "settings.json").write_text(json.dumps(self.settings, indent=1, default=str))
        return folder

    def _named(self) -> dict[str, ad.AnnData]:
        named = {"methylation": self.methylation, "expression": self.expression,
                 "ipsc": self.ipsc, "fetal": self.fetal}
        named.update({f"disease_{k}": v for k, v in self.diseases.items()})
        return named

    @classmethod
    def load(cls, folder: Path | str) -> Cohorts:
        """Read cohorts written by :meth:`save`."""
        folder = Path(folder)
        settings = json.loads((folder / "settings.json").read_text())
        read = {p.stem: ad.read_h5ad(p) for p in sorted(folder.glob("*.h5ad"))}
        truth = pd.read_csv(folder / "truth_genes.csv", index_col="gene", keep_default_na=False)
        pathways = pd.read_csv(folder / "planted_pathways.csv")
        diseases = {name: read[f"disease_{name}"] for name in settings["design"]["diseases"]}
        return cls(read["methylation"], read["expression"], diseases, read["ipsc"],
                   read["fetal"], truth, pathways, settings)


# --- planting the truth ----------------------------------------------------------------------

def _resample(values: pd.Series, n: int, rng) -> np.ndarray:
    return rng.choice(values.to_numpy(), size=n, replace=True)


def plant_methylation(genes: pd.Index, anchors: pd.DataFrame, cfg: dict,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Per gene: anchor (real / resampled), age gene or not, baseline beta at birth, logit slope
    per unit of Horvath's transform, precision. Real age genes: the covered genes with the
    largest absolute t (old vs newborn), keeping their real effect; resampled genes are age
    genes with the same probability, effects drawn from the real age genes'."""
    covered = anchors.index.intersection(genes)
    real = anchors.loc[covered]
    n_age = int(round(cfg["age_gene_fraction"] * len(real)))
    real_age = real["t_statistic"].abs().sort_values(ascending=False).index[:n_age]
    out = pd.DataFrame(index=genes)
    out["methylation_anchor"] = np.where(genes.isin(covered), "real", "resampled")
    out["is_age_gene"] = genes.isin(real_age)
    other = genes.difference(covered)
    out.loc[other, "is_age_gene"] = rng.random(len(other)) < cfg["age_gene_fraction"]
    out["baseline_beta"] = real["pooled_beta"].reindex(genes)
    out.loc[real_age, "baseline_beta"] = real.loc[real_age, "newborn_beta"]
    out["logit_slope"] = 0.0
    out.loc[real_age, "logit_slope"] = real.loc[real_age, "logit_slope"]
    out["precision"] = real["precision"].reindex(genes)
    age_pool = real.loc[real_age]
    resampled_age = other[out.loc[other, "is_age_gene"].to_numpy()]
    resampled_null = other.difference(resampled_age)
    out.loc[resampled_age, "baseline_beta"] = _resample(age_pool["newborn_beta"],
                                                        len(resampled_age), rng)
    out.loc[resampled_age, "logit_slope"] = _resample(age_pool["logit_slope"],
                                                      len(resampled_age), rng)
    out.loc[resampled_null, "baseline_beta"] = _resample(real["pooled_beta"],
                                                         len(resampled_null), rng)
    out.loc[other, "precision"] = _resample(real["precision"], len(other), rng)
    return out


def plant_pathways(truth: pd.DataFrame, pathways: pd.DataFrame, anchors: pd.DataFrame,
                   quantile: float, rng: np.random.Generator) -> tuple[pd.DataFrame,
                                                                       pd.DataFrame]:
    """Make the member genes of the planted pathways age genes with a strong effect (the given
    quantile of the real age genes' absolute slope); the sign is the real one where covered."""
    truth = truth.copy()
    size = truth.loc[truth["is_age_gene"], "logit_slope"].abs().quantile(quantile)
    truth["planted_pathway"] = ""
    rows = []
    for pathway in pathways.itertuples():
        members = [g for g in pathway.genes if g in truth.index]
        for gene in members:
            real_sign = np.sign(anchors["logit_slope"].get(gene, 0.0))
            sign = real_sign if real_sign != 0 else rng.choice([-1.0, 1.0])
            truth.loc[gene, ["is_age_gene", "logit_slope"]] = [True, sign * size]
            if gene in anchors.index:
                truth.loc[gene, "baseline_beta"] = anchors.loc[gene, "newborn_beta"]
            truth.loc[gene, "planted_pathway"] = ";".join(
                filter(None, [truth.loc[gene, "planted_pathway"], pathway.reactome_id]))
        rows.append({"reactome_id": pathway.reactome_id, "pathway": pathway.pathway,
                     "n_genes": pathway.n_genes, "n_planted": len(members),
                     "planted_genes": ";".join(members)})
    return truth, pd.DataFrame(rows)


def plant_expression(truth: pd.DataFrame, expression_genes: pd.Index, anchors: pd.DataFrame,
                     cfg: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Expression baselines (real GTEx muscle mean / SD, resampled when the gene is not in the
    muscle file) and age slopes opposite in sign to the gene's methylation slope."""
    truth = truth.copy()
    truth["in_expression"] = truth.index.isin(expression_genes)
    genes = truth.index[truth["in_expression"]]
    real = genes.intersection(anchors.index)
    other = genes.difference(real)
    truth["expression_anchor"] = ""
    truth.loc[real, "expression_anchor"] = "real"
    truth.loc[other, "expression_anchor"] = "resampled"
    truth["expression_mean"] = np.nan
    truth["expression_sd"] = np.nan
    truth.loc[real, ["expression_mean", "expression_sd"]] = anchors.loc[real, ["mean", "sd"]
                                                                        ].to_numpy()
    picks = rng.integers(0, len(anchors), len(other))
    truth.loc[other, ["expression_mean", "expression_sd"]] = anchors[["mean", "sd"]
                                                                     ].to_numpy()[picks]
    slope = truth["logit_slope"]
    typical = slope[truth["is_age_gene"]].abs().median()
    strength = (slope.abs() / typical).clip(0.5, 2.0) if typical > 0 else 0 * slope
    per_year = -np.sign(slope) * strength * cfg["age_effect_sd"] * truth["expression_sd"] / 60
    truth["expression_slope"] = np.where(truth["in_expression"] & truth["is_age_gene"],
                                         per_year, 0.0)
    return truth


def disease_linked_genes(disease_genes: pd.DataFrame, keywords: list[str]) -> list[str]:
    """Open Genes genes with a disease term containing one of the keywords (case-insensitive)."""
    keywords = [k.lower() for k in keywords]
    hit = disease_genes["terms"].map(lambda terms: any(k in t.lower() for t in terms
                                                       for k in keywords))
    return list(disease_genes.loc[hit, "gene"])


def plant_diseases(truth: pd.DataFrame, disease_genes: pd.DataFrame, design: dict,
                   rng: np.random.Generator) -> pd.DataFrame:
    """One effect column per disease (``effect_<disease>``, in units of the gene's SD):
    Open Genes genes of the disease's keywords first, topped up at random; the multi-disease
    targets planted where the design says."""
    truth = truth.copy()
    model = design["disease_model"]
    pool = truth.index[truth["in_expression"]]
    for name, spec in design["diseases"].items():
        linked = disease_linked_genes(disease_genes, spec["keywords"])
        chosen = [g for g in linked if g in pool][: model["n_genes"]]
        targets = [g for g, ds in model["multi_disease_targets"].items() if name in ds and
                   g in pool]
        chosen = list(dict.fromkeys(targets + chosen))
        rest = pool.difference(chosen)
        extra = rng.choice(rest.to_numpy(), size=max(0, model["n_genes"] - len(chosen)),
                           replace=False)
        effect = pd.Series(0.0, index=truth.index)
        signs = rng.choice([-1.0, 1.0], size=len(chosen) + len(extra))
        effect[chosen + list(extra)] = signs * model["effect_sd"]
        truth[f"effect_{name}"] = effect
        truth[f"source_{name}"] = ""
        truth.loc[chosen, f"source_{name}"] = "open_genes"
        truth.loc[targets, f"source_{name}"] = "multi_disease_target"
        truth.loc[list(extra), f"source_{name}"] = "random"
    return truth


# --- generating values ---------------------------------------------------------------------------

def _streams(seed: int, n: int, label: int) -> list[np.random.Generator]:
    sequence = np.random.SeedSequence([seed, label])
    return [np.random.default_rng(s) for s in sequence.spawn(max(1, -(-n // CHUNK)))]


def methylation_values(truth: pd.DataFrame, offsets: pd.DataFrame, sheet: pd.DataFrame,
                       age_column: str, seed: int, label: int) -> np.ndarray:
    """Beta values (samples x genes, float32): logit mean = logit(baseline) + slope x
    (F(age) - F(0)) + tissue offset, drawn from a beta distribution with the gene's precision."""
    base = logit(truth["baseline_beta"].to_numpy())
    slope = truth["logit_slope"].to_numpy()
    phi = truth["precision"].to_numpy()
    transformed = horvath_transform(sheet[age_column].to_numpy()) - horvath_transform(0.0)
    tissue_rows = offsets.loc[sheet["tissue"].to_numpy()].to_numpy()
    out = np.empty((len(sheet), len(truth)), np.float32)
    for i, rng in enumerate(_streams(seed, len(sheet), label)):
        block = slice(i * CHUNK, (i + 1) * CHUNK)
        mu = expit(base + np.outer(transformed[block], slope) + tissue_rows[block])
        out[block] = rng.beta(mu * phi, (1 - mu) * phi)
    return out


def expression_values(truth: pd.DataFrame, offsets: dict[str, pd.DataFrame],
                      sheet: pd.DataFrame, cfg: dict, seed: int, label: int,
                      shift: np.ndarray | None = None) -> np.ndarray:
    """log2 expression (samples x genes, float32, >= 0): real baseline + tissue, batch and donor
    offsets + age slope x (biological age - 50) + disease shift + normal noise (real SD)."""
    mean = truth["expression_mean"].to_numpy()
    slope = truth["expression_slope"].to_numpy()
    sd = truth["expression_sd"].to_numpy() * cfg["noise_scale"]
    age = sheet.get("biological_age", sheet["age"]).to_numpy() - 50.0
    fixed = offsets["tissue"].loc[sheet["tissue"].to_numpy()].to_numpy()
    for key in ("batch", "donor"):
        if key in sheet and key in offsets:
            fixed = fixed + offsets[key].loc[sheet[key].to_numpy()].to_numpy()
    out = np.empty((len(sheet), len(truth)), np.float32)
    for i, rng in enumerate(_streams(seed, len(sheet), label)):
        block = slice(i * CHUNK, (i + 1) * CHUNK)
        noise = rng.standard_normal((len(age[block]), len(mean)), dtype=np.float32) * sd
        value = mean + fixed[block] + np.outer(age[block], slope) + noise
        if shift is not None:
            value += shift[block]
        out[block] = np.maximum(value, 0.0)
    return out


def _offsets(levels, genes: pd.Index, sd: float, reference: str | None,
             rng: np.random.Generator) -> pd.DataFrame:
    """Per level x gene normal offsets (the reference level, if any, at zero)."""
    levels = list(dict.fromkeys(levels))
    values = rng.normal(0, sd, (len(levels), len(genes))).astype(np.float32)
    frame = pd.DataFrame(values, index=levels, columns=genes)
    if reference in frame.index:
        frame.loc[reference] = 0.0
    return frame


def _anndata(values: np.ndarray, sheet: pd.DataFrame, genes: pd.Index, **uns) -> ad.AnnData:
    adata = ad.AnnData(X=values, obs=sheet.copy(), var=pd.DataFrame(index=genes.copy()))
    adata.uns.update({"data": "simulated", **uns})
    return adata


# --- the generator ---------------------------------------------------------------------------

def select_genes(universe: pd.Index, must: list[str], n_genes: int | None,
                 rng: np.random.Generator) -> pd.Index:
    """All of ``must`` that are in the universe, then a random fill up to ``n_genes``."""
    must = [g for g in dict.fromkeys(must) if g in universe]
    if n_genes is None or n_genes >= len(universe):
        return universe
    rest = universe.difference(must)
    fill = rng.choice(rest.to_numpy(), size=max(0, n_genes - len(must)), replace=False)
    return pd.Index(sorted([*must, *fill]), name="gene")


def simulate(real: dict, pathways: pd.DataFrame, disease_genes: pd.DataFrame, design: dict,
             sizes: dict, seed: int) -> Cohorts:
    """Every Precious1GPT cohort from one seeded generator (see the module docstring)."""
    rng = np.random.default_rng(seed)
    targets = list(design["disease_model"]["multi_disease_targets"])
    linked = [g for spec in design["diseases"].values()
              for g in disease_linked_genes(disease_genes, spec["keywords"])]
    must = [g for genes in pathways["genes"] for g in genes] + targets + linked
    genes = select_genes(real["methylation_genes"], must, sizes.get("n_genes"), rng)
    truth = plant_methylation(genes, real["methylation"], design["methylation"], rng)
    truth, planted = plant_pathways(truth, pathways, real["methylation"],
                                    design["planted_pathway_effect_quantile"], rng)
    truth = plant_expression(truth, real["expression_genes"], real["expression"],
                             design["expression"], rng)
    truth = plant_diseases(truth, disease_genes, design, rng)
    truth.index.name = "gene"
    expr_genes = truth.index[truth["in_expression"]]
    meth_sheet = cohorts.methylation_sheet(sizes["n_methylation"], design, rng)
    shares = cohorts.bracket_shares(real["bracket_counts"],
                                    design["expression"]["bracket_70_79_share"])
    expr_sheet = cohorts.expression_sheet(sizes["n_expression"], design, shares, rng)
    ipsc = cohorts.ipsc_sheet(sizes["ipsc_replicates"], design)
    fetal = cohorts.fetal_sheet(sizes["fetal_replicates"], design)
    mcfg, ecfg = design["methylation"], design["expression"]
    meth_tissues = [*meth_sheet["tissue"].unique(), ipsc["tissue"].iloc[0],
                    *fetal["tissue"].unique()]
    meth_offsets = _offsets(sorted(set(meth_tissues)), genes, mcfg["tissue_offset_sd"],
                            mcfg["reference_tissue"], rng)
    disease_sheets = {name: cohorts.disease_sheet(name, sizes["n_per_disease_arm"], design, rng)
                      for name in design["diseases"]}
    expr_tissues = sorted(set(expr_sheet["tissue"]) | {d["tissue"] for d in
                                                       design["diseases"].values()})
    expr_offsets = {
        "tissue": _offsets(expr_tissues, expr_genes, ecfg["tissue_offset_sd"],
                           ecfg["reference_tissue"], rng),
        "batch": _offsets(sorted(expr_sheet["batch"].unique()), expr_genes,
                          ecfg["batch_offset_sd"], None, rng),
        "donor": _offsets(sorted(expr_sheet["donor"].unique()), expr_genes,
                          ecfg["donor_offset_sd"], None, rng),
    }
    mtruth, etruth = truth, truth.loc[expr_genes]
    methylation = _anndata(methylation_values(mtruth, meth_offsets, meth_sheet, "age", seed, 1),
                           meth_sheet, genes, modality="methylation")
    expression = _anndata(expression_values(etruth, expr_offsets, expr_sheet, ecfg, seed, 2),
                          expr_sheet, expr_genes, modality="expression")
    methylation.varm["tissue_offset"] = meth_offsets.T
    expression.varm["tissue_offset"] = expr_offsets["tissue"].T
    expression.varm["batch_offset"] = expr_offsets["batch"].T
    diseases = {}
    for label, (name, sheet) in enumerate(disease_sheets.items(), start=10):
        effect = etruth[f"effect_{name}"].to_numpy() * etruth["expression_sd"].to_numpy()
        shift = np.outer(sheet["case"].to_numpy(), effect)
        values = expression_values(etruth, {"tissue": expr_offsets["tissue"]}, sheet, ecfg,
                                   seed, label, shift)
        diseases[name] = _anndata(values, sheet, expr_genes, modality="expression",
                                  disease=name)
    ipsc_data = _anndata(methylation_values(mtruth, meth_offsets, ipsc, "epigenetic_age",
                                            seed, 3), ipsc, genes, modality="methylation")
    fetal_data = _anndata(methylation_values(mtruth, meth_offsets, fetal, "age", seed, 4),
                          fetal, genes, modality="methylation")
    settings = {"seed": seed, "sizes": sizes, "design": design, "data": "simulated"}
    return Cohorts(methylation, expression, diseases, ipsc_data, fetal_data, truth, planted,
                   settings)


# --- scoring against the truth -----------------------------------------------------------------

def age_correlation(adata: ad.AnnData) -> pd.Series:
    """Absolute Pearson r of each gene with age after removing tissue means (tissue offsets
    are planted too, and would otherwise hide or fake age signal)."""
    values = adata.to_df().astype(np.float64)
    tissue = adata.obs["tissue"].astype(str).to_numpy()
    centred = values - values.groupby(tissue).transform("mean")
    return centred.corrwith(adata.obs["age"].astype(float)).abs()


# --- cached entry point ------------------------------------------------------------------------

def code_version() -> str:
    """A hash of the simulator's source files: cached cohorts are rebuilt when they change."""
    digest = hashlib.sha256()
    for module in (anchors, cohorts, __import__(__name__, fromlist=["_"])):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def real_inputs(design: dict) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The real files the simulator is anchored on: anchors, planted pathways, disease genes."""
    real = anchors.real_anchors(tuple(design["methylation"]["precision_range"]))
    reactome = loaders.load_reactome_pathways()
    wanted = design["planted_pathways"]
    missing = sorted(set(wanted) - set(reactome["reactome_id"]))
    if missing:
        raise ValueError(f"planted pathways not in the Reactome GMT: {missing}")
    pathways = reactome.set_index("reactome_id").loc[wanted].reset_index()
    return real, pathways, loaders.load_opengenes_diseases()


def profile_sizes(profile: str, design: dict | None = None, **overrides) -> dict:
    """The cohort sizes of a profile (quick / default / paper), with overrides."""
    return designs.profile_sizes(profile, cohorts.load_design() if design is None else design,
                                 **overrides)


def cohorts_for(profile: str = "quick", seed: int = 0, inputs: tuple | None = None,
                **overrides) -> Cohorts:
    """The simulated cohorts of a profile and seed, generated once and then read from the cache
    (keyed by sizes, seed, design and simulator code); ``inputs`` are :func:`real_inputs`, when
    the caller already has them."""
    design = cohorts.load_design()
    sizes = profile_sizes(profile, design, **overrides)
    key = cache_key("precious1gpt-cohorts", {"sizes": sizes, "seed": seed, "design": design,
                                             "code": code_version()})
    folder = cache_dir() / "simulated" / f"precious1gpt-{key}"
    if (folder / "settings.json").is_file():
        return Cohorts.load(folder)
    simulated = simulate(*(inputs or real_inputs(design)), design, sizes, seed)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")  # one per process
    shutil.rmtree(partial, ignore_errors=True)
    simulated.save(partial)
    publish_folder(partial, folder, "settings.json")
    return simulated
