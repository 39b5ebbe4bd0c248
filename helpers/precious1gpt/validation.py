"""Validation of the Precious1GPT clock outside its training data (paper: Figure 2): the clock
predicts age along a reprogramming time course (iPSCs should become younger) and along fetal
development (fetal tissue should become older). The series come from the simulator, or from
the real GEO series GSE54848 / GSE76641 processed exactly like the training methylation (the
same TSS200 aggregation, the same training-set scaling). The clock also meets the real GSE30870
methylomes, beside the published Horvath (2013) clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy import stats

from helpers.data import geo, registry
from helpers.data.cache import output_dir
from helpers.precious1gpt import multimodal, promoters, transformer_clock

DATA_SOURCES = ("auto", "simulated", "real")
# Series of the paper's Figure 2: our name -> GEO accession, time column, expected direction.
SERIES = {"ipsc": ("GSE54848", "day", -1), "fetal": ("GSE76641", "weeks", +1)}
# The paper's claim for each series, and what its panel of Figure 2 shows (and so what the
# claim is judged on): reprogramming samples one by one, fetal tissues averaged per week.
CLAIMS = {"ipsc": "iPSCs become younger during induction",
          "fetal": "fetal tissue becomes older during development"}
JUDGED_ON = {"ipsc": "samples", "fetal": "means"}
MODALITY = "methylation"
TUNED = "the tuned model saved by the clock chapter"
PAPER_CONFIGURATION = "the paper's configuration, trained by this chapter"


@dataclass
class ValidationSeries:
    """One validation series as gene-level beta values (samples x genes) with its design."""

    name: str
    values: pd.DataFrame
    obs: pd.DataFrame
    data: str
    cpg_betas: pd.DataFrame | None = None
    gene_coverage: pd.DataFrame | None = field(default=None, repr=False)


# --- where the series come from ------------------------------------------------------------------

def real_series_present() -> dict[str, bool]:
    """Per series, whether its real GEO matrix is on this machine."""
    return {name: registry.local_copy(geo.VALIDATION_SERIES[accession][0]) is not None
            for name, (accession, _, _) in SERIES.items()}


def choose_source(data_source: str, present: dict[str, bool] | None = None) -> str:
    """``auto`` uses the real GEO series when both are on this machine, else the simulator;
    ``real`` insists on them (downloading if possible); ``simulated`` never reads them."""
    if data_source not in DATA_SOURCES:
        raise ValueError(f"data_source must be one of {DATA_SOURCES}, not {data_source!r}")
    if data_source != "auto":
        return data_source
    present = real_series_present() if present is None else present
    return "real" if all(present.values()) else "simulated"


def simulated_series(profile: str, seed: int) -> dict[str, ValidationSeries]:
    """The simulator's reprogramming course and fetal series (gene-level, with planted truth)."""
    from helpers.precious1gpt import simulator

    sim = simulator.cohorts_for(profile, seed)
    return {name: ValidationSeries(name, getattr(sim, name).to_df(),
                                   getattr(sim, name).obs.copy(), "simulated")
            for name in SERIES}


def gene_level(cpg_betas: pd.DataFrame, probe_map: pd.DataFrame
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CpG-level betas to the training features: the mean of each gene's TSS200 probes (the
    function that built every training matrix)."""
    return promoters.gene_level_methylation(cpg_betas, probe_map, "TSS200")


def real_series(probe_map: pd.DataFrame, keep: set[str] | None = None
                ) -> dict[str, ValidationSeries]:
    """The real GEO series (hash-checked, design parsed), CpG-level and gene-level."""
    out = {}
    for name, (accession, _, _) in SERIES.items():
        adata = geo.load_validation_series(accession, keep=keep)
        betas = adata.to_df()
        values, coverage = gene_level(betas, probe_map)
        out[name] = ValidationSeries(name, values, adata.obs.copy(), f"real ({accession})",
                                     betas, coverage)
    return out


# --- predicting ----------------------------------------------------------------------------------

def tissue_tokens(tissues: pd.Series, known: list[str], proxies: dict[str, str]
                  ) -> tuple[pd.Series, pd.DataFrame]:
    """The tissue each sample is presented to the model as: itself when the model was trained
    on it, else its proxy. The table lists every tissue and its token; a tissue the model does
    not know and that has no proxy (or a proxy the model does not know) is an error."""
    rows = []
    for tissue in sorted(tissues.astype(str).unique()):
        token = tissue if tissue in known else proxies.get(tissue)
        if token is None or token not in known:
            raise ValueError(f"tissue {tissue!r} was not seen in training and its proxy "
                             f"{token!r} is not a training tissue; give one of {known}")
        rows.append({"tissue": tissue, "presented as": token,
                     "rule": "itself" if token == tissue else "proxy"})
    table = pd.DataFrame(rows)
    return tissues.astype(str).map(table.set_index("tissue")["presented as"]), table


def with_predictions(series: ValidationSeries, predicted) -> pd.DataFrame:
    """A series' design columns with a clock's predictions and the data label."""
    frame = series.obs.copy()
    frame["predicted"] = predicted
    frame["data"] = series.data
    return frame


def predict_series(clock: transformer_clock.SavedClock, series: ValidationSeries,
                   proxies: dict[str, str], allow_missing: bool = False
                   ) -> tuple[pd.DataFrame, dict]:
    """The clock's predictions for a series, beside its design columns, and the encoding
    report (genes missing from the series, missing values; errors unless ``allow_missing``)."""
    obs = series.obs.copy()
    obs["tissue"], _ = tissue_tokens(series.obs["tissue"], clock.space.tissues, proxies)
    table, report = multimodal.encode(clock.space, series.values, obs, MODALITY, allow_missing)
    frame = with_predictions(series, clock.predict(table))
    frame.insert(len(series.obs.columns), "presented as", obs["tissue"])
    return frame, report


def time_trend(frame: pd.DataFrame, time: str) -> dict:
    """Spearman correlation of predicted age with time, over samples and over the time points'
    means (averaged across tissues and replicates); samples without a time are left out."""
    timed = frame.dropna(subset=[time])
    means = timed.groupby(time)["predicted"].mean()
    if len(means) < 3:
        raise ValueError(f"a trend needs at least three time points in {time!r}")
    samples = stats.spearmanr(timed[time], timed["predicted"])
    points = stats.spearmanr(means.index, means.to_numpy())
    return {"n_samples": len(timed), "n_time_points": len(means),
            "spearman_samples": float(samples.statistic), "p_samples": float(samples.pvalue),
            "spearman_means": float(points.statistic), "p_means": float(points.pvalue)}


def verdict(rho: float, direction: int, threshold: float = 0.9) -> str:
    """'holds' when the correlation has the expected sign and reaches ``threshold`` in size,
    'same direction, weaker' when only the sign is right, 'does not hold' otherwise."""
    if direction * rho >= threshold:
        return "holds"
    return "same direction, weaker" if direction * rho > 0 else "does not hold"


RECOVERY_WORDS = {"holds": "recovered (planted)",
                  "same direction, weaker": "partly recovered (planted)",
                  "does not hold": "not recovered (planted)"}


def reading(verdict_text: str, data: str) -> str:
    """A trend's verdict as the page states it: on real data the verdict on the paper's claim;
    on simulated data, where the simulator plants both trends, whether the clock recovered
    what was planted (never "reproduced")."""
    return RECOVERY_WORDS[verdict_text] if "simulated" in data else verdict_text


def judge_claims(predictions: dict[str, pd.DataFrame], clock: str, threshold: float = 0.9
                 ) -> pd.DataFrame:
    """One row per series: the paper's claim, the Spearman correlations with time (samples and
    time-point means), the one its Figure 2 panel shows, and the verdict against
    ``threshold``."""
    rows = []
    for name, frame in predictions.items():
        _, time, direction = SERIES[name]
        trend = time_trend(frame, time)
        judged = trend[f"spearman_{JUDGED_ON[name]}"]
        rows.append({"claim (paper)": CLAIMS[name], "clock": clock,
                     "data": frame["data"].iloc[0], "published": "Figure 2, no number",
                     "time": time, "samples": trend["n_samples"],
                     "time points": trend["n_time_points"],
                     "Spearman (samples)": trend["spearman_samples"],
                     "Spearman (time-point means)": trend["spearman_means"],
                     "judged on": JUDGED_ON[name], "Spearman (judged)": judged,
                     "verdict": verdict(judged, direction, threshold)})
    return pd.DataFrame(rows).set_index("claim (paper)")


def token_sensitivity(clock: transformer_clock.SavedClock, series: ValidationSeries,
                      tissue: str, time: str) -> pd.DataFrame:
    """The series predicted with ``tissue`` presented as each training tissue in turn: how
    much the choice of proxy moves the ages and the trend."""
    rows = []
    for token in clock.space.tissues:
        frame, _ = predict_series(clock, series, {tissue: token})
        trend = time_trend(frame, time)
        rows.append({"presented as": token, "mean predicted": frame["predicted"].mean(),
                     "spearman (samples)": trend["spearman_samples"]})
    return pd.DataFrame(rows).set_index("presented as")


# --- the two clocks at the extremes of age (real GSE30870) ----------------------------------------

def gse30870_series(probe_map: pd.DataFrame, adata=None) -> ValidationSeries:
    """The real GSE30870 blood methylomes (newborns, 89-103 years; ``adata``, loaded when not
    given) as the clock's features."""
    from helpers.common import clocks
    from helpers.precious1gpt import anchors

    values, coverage, ages = anchors.real_gene_level_gse30870(probe_map, adata)
    obs = pd.DataFrame({"tissue": "Blood", "modality": MODALITY, "age": ages.astype(float)},
                       index=values.index)
    obs["group"] = clocks.age_group(obs["age"])
    return ValidationSeries("gse30870", values, obs, "real (GSE30870)", None, coverage)


def horvath_on_series(series: ValidationSeries, rule: str) -> tuple[pd.DataFrame, dict]:
    """Horvath (2013) on a series' CpG-level betas under a missing-CpG rule, with the report."""
    from helpers.common import clocks

    if series.cpg_betas is None:
        raise ValueError(f"series {series.name!r} ({series.data}) has no CpG-level data")
    predicted, report = clocks.apply_clock(clocks.load_clock("horvath2013"), series.cpg_betas,
                                           rule)
    return with_predictions(series, predicted), report

def extremes_table(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per clock and age group (newborns, 89-103): n, mean age, mean prediction, MAE and mean
    signed error. ``predictions``: clock name -> frame with age, predicted and group."""
    rows = []
    for clock, frame in predictions.items():
        for group, part in frame.groupby("group", sort=False):
            error = part["predicted"] - part["age"]
            rows.append({"clock": clock, "group": group, "n": len(part),
                         "mean age": part["age"].mean(),
                         "mean predicted": part["predicted"].mean(),
                         "MAE": error.abs().mean(), "mean error": error.mean()})
    return pd.DataFrame(rows)


def trained_as(about: dict) -> str:
    """One line on what a saved clock was trained on and how it was configured."""
    return (f"{about.get('kind', 'model')} trained on {about.get('data', '?')} data "
            f"(profile {about.get('profile', '?')}, seed {about.get('seed', '?')}, "
            f"{about.get('samples', '?')} samples, {about.get('genes', '?')} genes)")


def is_current(about: dict, expected: dict) -> bool:
    """Whether a saved clock was trained with the settings this run expects."""
    return all(about.get(k) == v for k, v in expected.items())


def output_folder(profile: str, seed: int) -> Path:
    """Where this chapter keeps the clock it trains when the clock chapter's is missing."""
    return output_dir("p1_validation", profile, seed)


def clock_for(profile: str, seed: int, max_epochs: int, patience: int, progress: bool = True
              ) -> tuple[transformer_clock.SavedClock, str]:
    """The clock to validate and where it came from: the tuned model the clock chapter saved
    for this profile and seed when it matches the current simulator and training code; else a
    model with the paper's configuration, trained here once and kept in this chapter's folder."""
    from helpers.precious1gpt import clock_problem, evaluation, simulator

    expected = {"profile": profile, "seed": seed, "simulator": simulator.code_version(),
                "training_code": clock_problem.training_code_version()}
    chapter = clock_problem.output_folder(profile, seed) / "model"
    own = output_folder(profile, seed) / "model"
    for folder, origin in [(chapter, TUNED), (own, PAPER_CONFIGURATION)]:
        if transformer_clock.is_trusted_clock(folder):
            clock = transformer_clock.load_clock(folder)
            if is_current(clock.about, expected):
                return clock, origin
    problem = clock_problem.simulated_problem(profile, seed, max_epochs=max_epochs,
                                              patience=patience, progress=progress,
                                              workdir=output_folder(profile, seed) / "training")
    hp = transformer_clock.PAPER_HYPERPARAMETERS
    result, _ = evaluation.fit_final(problem, "tabtransformer", hp, label="validation clock")
    transformer_clock.save_clock(own, result, problem.space,
                                 about={**problem.settings, "kind": "tabtransformer"})
    return transformer_clock.load_clock(own), PAPER_CONFIGURATION
