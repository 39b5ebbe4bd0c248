"""The SHAP gene rankings of the Precious1GPT part, computed once per profile, seed and
settings and shared by the transfer-learning and enrichment chapters: the regressor's ranking
(Supplementary Table 3) and each disease classifier's, for both arms (aging-aware and from
scratch; the paper's Supplementary Tables 4-7 are the aging-aware ones)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.data.cache import cache_key, output_dir
from helpers.precious1gpt import importance, transfer

CHAPTER = "p1_transfer_learning"
DEFAULTS = {"classifier_epochs": 100, "classifier_patience": 10,
            "finetune_learning_rate": 1e-3, "shap_explained": 300, "shap_background": 50,
            "shap_nsamples": 200}


@dataclass
class Rankings:
    """Gene rankings: ``regressor`` and ``diseases[arm][disease]``, with what made them."""

    regressor: pd.DataFrame
    diseases: dict[str, dict[str, pd.DataFrame]]
    about: dict

    def save(self, folder: Path) -> Path:
        """Write every ranking as CSV and ``about.json`` last (its presence marks a whole set)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.regressor.to_csv(folder / "regressor.csv", na_rep="NaN")
        for arm, tables in self.diseases.items():
            for disease, table in tables.items():
                table.to_csv(folder / f"{arm}__{disease}.csv", na_rep="NaN")
        (folder / "about.json").write_text(json.dumps(self.about, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> Rankings:
        """Read rankings written by :meth:`save`."""
        about = json.loads((folder / "about.json").read_text())
        read = {p.stem: pd.read_csv(p, index_col="gene", keep_default_na=False,
                                    na_values=["NaN"]) for p in folder.glob("*.csv")}
        diseases = {arm: {d: read[f"{arm}__{d}"] for d in about["diseases"]}
                    for arm in transfer.ARMS}
        return cls(read["regressor"], diseases, about)


def settings_for(**given) -> dict:
    """The ranking settings: :data:`DEFAULTS` overridden by ``given`` (unknown names refused)."""
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown ranking setting(s) {unknown}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **given}


def fine_tuning(settings: dict) -> transfer.FineTuning:
    """The classifiers' training settings."""
    return transfer.FineTuning(settings["classifier_epochs"], settings["classifier_patience"],
                               finetune_learning_rate=settings["finetune_learning_rate"])


def regressor_ranking(clock, problem, settings: dict, seed: int) -> pd.DataFrame:
    """Supplementary Table 3: the regressor's genes by mean absolute SHAP over hold-out samples of
    every tissue and modality, each against training samples of its own group."""
    explained = importance.stratified_rows(problem.rows("test"), settings["shap_explained"],
                                           seed)
    values = importance.explain(clock.model, explained, problem.rows("train"), clock.space.genes,
                                "years", settings["shap_background"], settings["shap_nsamples"],
                                seed)
    return importance.rank_genes(values, explained, problem.data.obs["modality"],
                                 clock.space.coverage())


def disease_ranking(classifier, table: pd.DataFrame, genes: list[str], settings: dict,
                    seed: int) -> pd.DataFrame:
    """Supplementary Tables 4-7: a classifier's genes by mean absolute SHAP (log-odds of case) over
    every sample of the cohort, against background samples of the same cohort."""
    values = importance.explain(classifier, table, table, genes, "log_odds",
                                settings["shap_background"], settings["shap_nsamples"], seed)
    modality = pd.Series("expression", index=table.index)
    return importance.rank_genes(values, table, modality).drop(
        columns=["modality", "mean_abs_shap_expression"])


def rankings_for(profile: str, seed: int, clock, origin: str, settings: dict,
                 tables: dict[str, pd.DataFrame], classifiers: dict | None = None,
                 progress: bool = True) -> Rankings:
    """The rankings of this profile, seed, clock and settings: read from the transfer chapter's
    folder when they exist, else computed (with ``classifiers``, the split-0 models keyed by
    (disease, arm), when the caller has them; otherwise they are trained here) and saved."""
    from helpers.precious1gpt import clock_problem

    about = {"profile": profile, "seed": seed, "clock": origin, "settings": settings,
             "clock_about": {k: clock.about.get(k) for k in
                             ("simulator", "training_code", "best_epoch", "data", "seed")},
             "code": importance_code_version(), "diseases": list(tables)}
    key = cache_key("p1-gene-rankings", about)[:16]
    folder = output_dir(CHAPTER, profile, seed) / f"rankings-{key}"
    if (folder / "about.json").is_file():
        return Rankings.load(folder)
    problem = clock_problem.simulated_problem(profile, seed, progress=False)
    regressor = regressor_ranking(clock, problem, settings, seed)
    tuning = fine_tuning(settings)
    diseases = {arm: {} for arm in transfer.ARMS}
    for disease, table in tables.items():
        split = transfer.repeated_splits(table[transfer.LABEL], 1, seed)[0]
        for arm in transfer.ARMS:
            model = (classifiers or {}).get((disease, arm))
            if model is None:
                model = transfer.fit_classifier(clock, table, split, arm, tuning, seed,
                                                folder.parent / "training")
            diseases[arm][disease] = disease_ranking(model, table, clock.space.genes, settings,
                                                     seed)
    Rankings(regressor, diseases, about).save(folder)
    return Rankings.load(folder)


def importance_code_version() -> str:
    """A hash of the code that makes rankings: saved rankings are not reused across changes."""
    from helpers.data.cache import source_digest
    from helpers.precious1gpt import multimodal, transformer_clock

    return source_digest(importance, transfer, multimodal, transformer_clock, __file__)
