"""Chapter results on disk: the tables, paper-claim verdicts and planted-truth recoveries that
each chapter records, so that the appendix can rebuild the papers' tables and the reproduction
scorecard from what the chapters actually computed (never from typed numbers).

A chapter opens a :class:`Recorder` (which clears its previous results) and records into
``chapters/results/<chapter>/``; the appendix reads them back with :func:`load_table`,
:func:`claims` and :func:`recoveries`. Under the chapter runner the recorder writes into a
staging folder instead (``AGING_BOOK_RESULTS_STAGING``, set by :mod:`helpers.book.run`), and the
runner swaps it in only when the chapter succeeded: a failed, interrupted or concurrent run
never deletes or mixes the previous results. Every file is written whole, then renamed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.data.files import write_whole
from helpers.paths import ROOT

RESULTS_DIR = ROOT / "chapters" / "results"
STAGING_ENV = "AGING_BOOK_RESULTS_STAGING"  # where the runner wants a chapter's results written
CLAIMS_FILE = ROOT / "data" / "published" / "claims.csv"
VERDICTS = ("reproduced", "partly reproduced", "not reproduced")
# a simulated verdict on an effect the simulator plants by design (claims.csv simulator_plants)
PLANTED = {"reproduced": "recovered (planted)", "partly reproduced": "partly recovered (planted)",
           "not reproduced": "not recovered"}
NOT_JUDGED = "not judged (quick profile)"
NOT_TESTABLE = "not testable here"
NOT_RUN = "not run"
SCORECARD_VERDICTS = (*VERDICTS, *PLANTED.values(), NOT_JUDGED, NOT_TESTABLE, NOT_RUN)
DATA_KINDS = ("real", "simulated")
CLAIM_COLUMNS = ("claim_id", "paper", "claim", "where", "paper_number", "paper_criterion",
                 "book_threshold", "simulator_plants", "real_test", "chapter")


def claim_list(path: Path = CLAIMS_FILE) -> pd.DataFrame:
    """The papers' qualitative claims the book tests, each with the paper's criterion, the
    book's threshold, whether the simulator plants it and whether real data can test it."""
    table = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    missing = set(CLAIM_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    duplicated = table["claim_id"][table["claim_id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{path}: field claim_id repeats {duplicated}")
    for field in CLAIM_COLUMNS:
        empty = table.loc[table[field].str.strip() == "", "claim_id"].tolist()
        if empty:
            raise ValueError(f"{path}: field {field} is empty for {empty}")
    bad = table.loc[~table["simulator_plants"].isin(["yes", "no"]), "claim_id"].tolist()
    if bad:
        raise ValueError(f"{path}: field simulator_plants must be 'yes' or 'no' for {bad}")
    return table


def claim_chapters(listed: str) -> list[str]:
    """The chapters a claim is tested in (field ``chapter``: one name, or several joined by
    ';' when real and simulated evidence come from different chapters)."""
    return [name.strip() for name in str(listed).split(";") if name.strip()]


def verdict(holds: bool, partly: bool = False) -> str:
    """A claim's rule applied: it holds, holds in part, or does not (the recorder then words it
    for the data and profile, :func:`scored_verdict`)."""
    return VERDICTS[0] if holds else VERDICTS[1] if partly else VERDICTS[2]


def scored_verdict(rule: str, data: str, planted: bool, profile: str) -> str:
    """What the scorecard says for a rule's outcome: nothing at the quick profile (it checks
    the pipeline), "recovered (planted)" / "not recovered" for a simulated effect the simulator
    builds in, the rule's own words otherwise."""
    if rule not in VERDICTS:
        raise ValueError(f"verdict {rule!r} is not one of {VERDICTS}")
    if profile == "quick":
        return NOT_JUDGED
    if planted and data_kind(data) == "simulated":
        return PLANTED[rule]
    return rule


def _check_data(data: str, where: str) -> str:
    """Every recorded number says whether it comes from real or simulated data."""
    if not any(kind in data for kind in DATA_KINDS):
        raise ValueError(f"{where}: data label {data!r} names neither 'real' nor 'simulated'")
    return data


@dataclass(frozen=True)
class Recorder:
    """Writes one chapter's results (profile and seed included) under ``root/<chapter>``
    (``root`` None: the book's ``chapters/results`` folder)."""

    chapter: str
    profile: str
    seed: int
    root: Path | None = None

    @property
    def folder(self) -> Path:
        return Path(self.root or RESULTS_DIR) / self.chapter

    def table(self, name: str, table: pd.DataFrame, data: str | None = None) -> Path:
        """Save a result table as CSV; rows need a ``data`` column or a ``data`` label."""
        frame = table.reset_index() if _named_index(table) else table.reset_index(drop=True)
        if data is not None:
            frame = frame.assign(data=_check_data(data, f"{self.chapter}/{name}"))
        elif "data" not in frame.columns:
            raise ValueError(f"{self.chapter}/{name}: the table has no 'data' column; pass "
                             "data='real' or data='simulated'")
        path = self.folder / f"{name}.csv"
        write_whole(path, frame.to_csv(index=False))
        return path

    def _claim_row(self, claim_id: str, data: str) -> pd.Series:
        """The claims.csv row of a claim this chapter may record, with ``data`` checked."""
        known = claim_list()
        row = known[known["claim_id"] == claim_id]
        if row.empty:
            raise KeyError(f"{CLAIMS_FILE}: no claim_id {claim_id!r}")
        if self.chapter not in claim_chapters(row["chapter"].iloc[0]):
            raise ValueError(f"claim {claim_id!r} belongs to chapter {row['chapter'].iloc[0]!r}, "
                             f"not {self.chapter!r} (field chapter of {CLAIMS_FILE})")
        _check_data(data, claim_id)
        return row.iloc[0]

    def claim(self, claim_id: str, verdict: str, evidence: str, data: str) -> str:
        """Record the verdict on one of the papers' claims (``data/published/claims.csv``) and
        return it as the scorecard words it (:func:`scored_verdict`)."""
        row = self._claim_row(claim_id, data)
        if verdict not in VERDICTS:
            raise ValueError(f"claim {claim_id!r}: verdict {verdict!r} is not one of {VERDICTS}")
        scored = scored_verdict(verdict, data, row["simulator_plants"] == "yes", self.profile)
        self._append("claims.json", {"claim_id": claim_id, "verdict": scored, "rule": verdict,
                                     "evidence": evidence, "data": data})
        return scored

    def refuse(self, claim_id: str, reason: str, data: str) -> str:
        """Record that a claim is not judged here, and why (too few splits, trials or samples
        for the statistic its rule needs): a refusal, never a verdict."""
        self._claim_row(claim_id, data)
        said = NOT_JUDGED if self.profile == "quick" else f"not judged ({reason})"
        self._append("claims.json", {"claim_id": claim_id, "verdict": said, "rule": "",
                                     "evidence": reason, "data": data})
        return said

    def recovery(self, what: str, value: str, goal: str, data: str = "simulated") -> None:
        """Record how well a method recovered the simulator's planted truth."""
        self._append("recoveries.json", {"what": what, "value": value, "goal": goal,
                                         "data": _check_data(data, what)})

    def glance(self) -> str:
        """The claims this chapter judged so far and the planted truths it checked, as a
        Markdown list for the chapter's 'At a glance' box (each with its kind of data)."""
        known = claim_list().set_index("claim_id")["claim"]
        lines = [f"- {known.get(r['claim_id'], r['claim_id'])} ({data_kind(r['data'])} data): "
                 f"**{r['verdict']}**" for r in self._read("claims.json")]
        lines += [f"- planted truth, {r['what']} (simulated data): {r['value']}"
                  for r in self._read("recoveries.json")]
        return "\n".join(lines) or "- No claim of the paper is judged in this chapter."

    def _read(self, name: str) -> list[dict]:
        path = self.folder / name
        return json.loads(path.read_text()) if path.is_file() else []

    def _append(self, name: str, record: dict) -> None:
        """Add a record, replacing an earlier one on the same claim (or recovery) and the same
        kind of data: a claim can carry one real and one simulated row of evidence."""
        records = [r for r in self._read(name) if _identity(r) != _identity(record)] + [record]
        write_whole(self.folder / name, json.dumps(records, indent=1))



def data_kind(data: str) -> str:
    """'real' or 'simulated': the kind of evidence a data label names (a label naming both,
    such as 'simulated genes, real Reactome', rests on simulated data)."""
    return "simulated" if "simulated" in data else "real"


def _identity(record: dict) -> tuple[str, str]:
    return record.get("claim_id", record.get("what")), data_kind(record["data"])


def _named_index(table: pd.DataFrame) -> bool:
    return any(name is not None for name in table.index.names)


def recorder(chapter: str, profile: str, seed: int, root: Path = RESULTS_DIR) -> Recorder:
    """Start a chapter's results afresh (old files removed) and note its profile and seed;
    under the runner, in its staging folder (:data:`STAGING_ENV`), swapped in on success."""
    rec = Recorder(chapter, profile, int(seed), Path(os.environ.get(STAGING_ENV) or root))
    rec.folder.mkdir(parents=True, exist_ok=True)
    for old in rec.folder.iterdir():
        old.unlink()
    write_whole(rec.folder / "meta.json", json.dumps({"chapter": chapter, "profile": profile,
                                                       "seed": int(seed)}))
    return rec


def _meta(chapter: str, root: Path) -> dict:
    path = Path(root) / chapter / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results of chapter {chapter!r} in {path.parent}; run "
                                f"`python -m helpers.book.run --chapter {chapter}` first")
    return json.loads(path.read_text())


def load_table(chapter: str, name: str, root: Path = RESULTS_DIR) -> pd.DataFrame:
    """A table a chapter recorded, with its ``profile`` and ``seed`` in ``attrs``."""
    meta = _meta(chapter, root)
    path = Path(root) / chapter / f"{name}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.csv"))
        raise FileNotFoundError(f"chapter {chapter!r} recorded no table {name!r} ({path}); "
                                f"it recorded {known}")
    table = pd.read_csv(path)
    table.attrs.update(meta)
    return table


def _records(name: str, root: Path) -> list[dict]:
    rows = []
    for folder in sorted(Path(root).glob("*")):
        path = folder / name
        if path.is_file():
            meta = _meta(folder.name, root)
            rows += [{**r, "chapter": folder.name, "profile": meta["profile"],
                      "seed": meta["seed"]} for r in json.loads(path.read_text())]
    return rows


def claims(root: Path = RESULTS_DIR, path: Path = CLAIMS_FILE) -> pd.DataFrame:
    """Every listed claim with one row of evidence per kind of data (``evidence kind``): the
    verdict a chapter recorded, "not run" when its chapter has not, and "not testable here"
    (with the reason from ``real_test``) for real data no chapter can test."""
    listed = claim_list(path)
    recorded = pd.DataFrame(_records("claims.json", root),
                            columns=["claim_id", "verdict", "rule", "evidence", "data", "chapter",
                                     "profile", "seed"])
    recorded["evidence kind"] = recorded["data"].map(data_kind)
    rows = []
    for claim in listed.to_dict("records"):
        for kind in DATA_KINDS:
            found = recorded[(recorded["claim_id"] == claim["claim_id"])
                             & (recorded["evidence kind"] == kind)]
            if len(found):
                rows.append({**claim, **found.iloc[0].to_dict()})
            elif kind == "real" and claim["real_test"] != "yes":
                rows.append({**claim, "evidence kind": kind, "verdict": NOT_TESTABLE,
                             "evidence": claim["real_test"], "data": "real"})
            else:
                rows.append({**claim, "evidence kind": kind, "verdict": NOT_RUN})
    return pd.DataFrame(rows, columns=[*CLAIM_COLUMNS, "evidence kind", "verdict", "rule",
                                       "evidence", "data", "profile", "seed"])


def other_runs(table: pd.DataFrame, profile: str, seed: int) -> int:
    """How many rows with a recorded run (``profile``, ``seed`` columns) came from another
    profile or seed than the one asked for."""
    recorded = table["profile"].fillna("").astype(str) != ""
    other = (table["profile"] != profile) | (table["seed"] != seed)
    return int((recorded & other).sum())


def recoveries(root: Path = RESULTS_DIR) -> pd.DataFrame:
    """The planted-truth recovery figures every chapter recorded."""
    return pd.DataFrame(_records("recoveries.json", root),
                        columns=["chapter", "what", "value", "goal", "data", "profile", "seed"])
