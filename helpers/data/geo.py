"""GEO series-matrix files: sample annotations (characteristics parsed into columns) and the
data table, read into samples x features; configured for the Precious1GPT validation series,
GSE54848 (fibroblasts reprogrammed to iPSC, days after transfection) and GSE76641 (fetal
tissues, weeks after last menstruation), whose designs are parsed into typed columns.

Format: ``!Series_*`` lines, then ``!Sample_*`` lines with one quoted cell per sample (several
``!Sample_characteristics_ch1`` lines whose cells read ``key: value``), then the table between
``!series_matrix_table_begin`` and ``!series_matrix_table_end`` with an ``"ID_REF"`` header.
"""

from __future__ import annotations

import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from helpers.data.formats import (
    DataFormatError,
    age_from_gestational_weeks,
    numeric_rows,
    open_text,
    require_unique,
)
from helpers.data.registry import fetch, load_registry

BEGIN, END = "!series_matrix_table_begin", "!series_matrix_table_end"


def _cells(line: str) -> list[str]:
    return [c.strip().strip('"') for c in line.rstrip("\r\n").split("\t")]


def parse_characteristics(lines: list[list[str]], samples: list[str], path) -> pd.DataFrame:
    """``key: value`` cells of the characteristics lines into one column per key."""
    columns: dict[str, list] = {}
    for cells in lines:
        for i, cell in enumerate(cells):
            if not cell:
                continue
            key, sep, value = cell.partition(":")
            if not sep:
                raise DataFormatError(f"{path}: characteristics cell {cell!r} of sample "
                                      f"{samples[i]!r} is not 'key: value'")
            column = columns.setdefault(key.strip().lower(), [None] * len(samples))
            column[i] = value.strip()
    return pd.DataFrame(columns, index=pd.Index(samples, name="geo_accession"))


def read_series_matrix(path: Path | str, value_range: tuple[float, float] | None = None,
                       keep: set[str] | None = None) -> ad.AnnData:
    """Read a series matrix into samples x ID_REF; obs holds the title, source, the parsed
    characteristics and every other single-line sample field. ``value_range`` (e.g. (0, 1) for
    beta values) is checked; missing values stay NaN and are counted in ``uns``; ``keep``
    (e.g. the probes a model uses) drops every other row after its width is checked."""
    sample_fields: dict[str, list[str]] = {}
    characteristics: list[list[str]] = []
    with open_text(path) as stream:
        for line in stream:
            if line.startswith(BEGIN):
                break
            if line.startswith("!Sample_characteristics"):
                characteristics.append(_cells(line)[1:])
            elif line.startswith("!Sample_"):
                cells = _cells(line)
                sample_fields.setdefault(cells[0][len("!Sample_"):], cells[1:])
        else:
            raise DataFormatError(f"{path}: no {BEGIN} line (truncated file)")
        table_lines = []
        for line in stream:
            if line.startswith(END):
                break
            table_lines.append(line)
        else:
            raise DataFormatError(f"{path}: no {END} line (truncated table)")
    if "geo_accession" not in sample_fields:
        raise DataFormatError(f"{path}: missing field '!Sample_geo_accession'")
    samples = sample_fields["geo_accession"]
    require_unique(samples, "ids in field '!Sample_geo_accession'", path)
    for name, cells in [*sample_fields.items(), *(("characteristics", c) for c in characteristics)]:
        if len(cells) != len(samples):
            raise DataFormatError(f"{path}: field '!Sample_{name}' has {len(cells)} cells for "
                                  f"{len(samples)} samples")
    obs = parse_characteristics(characteristics, samples, path)
    for name, cells in sample_fields.items():
        if name != "geo_accession" and name not in obs:
            obs[name] = cells
    ids, matrix = _table(table_lines, samples, path, value_range, keep)
    adata = ad.AnnData(X=matrix.T.copy(), obs=obs, var=pd.DataFrame(index=pd.Index(ids)))
    adata.uns["missing_values"] = int(np.isnan(matrix).sum())
    return adata


def _table(lines: list[str], samples: list[str], path, value_range, keep=None):
    if not lines:
        raise DataFormatError(f"{path}: empty data table")
    header = _cells(lines[0])
    if header[0] != "ID_REF":
        raise DataFormatError(f"{path}: table header starts with {header[0]!r}, not 'ID_REF'")
    if len(header) - 1 != len(samples):
        raise DataFormatError(f"{path}: table header lists {len(header) - 1} samples but field "
                              f"'!Sample_geo_accession' has {len(samples)}")
    if header[1:] != samples:
        raise DataFormatError(f"{path}: table header (field 'ID_REF' then samples) does not "
                              "list the samples of '!Sample_geo_accession' in order")
    rows = ((number, _cells(line)) for number, line in enumerate(lines[1:], start=2))
    return numeric_rows(rows, len(samples), path, "ids in field 'ID_REF'", unit="table row",
                        value_range=value_range, keep=keep)


def load_series_matrix(key: str, value_range: tuple[float, float] | None = (0.0, 1.0),
                       keep: set[str] | None = None) -> ad.AnnData:
    """A registered real series matrix (fetched by hash), beta values checked by default."""
    registry = load_registry()
    path = fetch(key, registry)
    adata = read_series_matrix(path, value_range, keep)
    adata.uns["provenance"] = registry[key].provenance
    adata.uns["path"] = str(path)
    return adata


# --- the two validation series: their designs as typed columns ----------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"
_DAY = re.compile(rf"(?<![a-z])day[\s_:-]*{_NUMBER}|{_NUMBER}\s*days?\b", re.IGNORECASE)
_WEEK = re.compile(rf"{_NUMBER}\s*(?:w|wk|wks|weeks?)\b|\bweeks?[\s_:-]*{_NUMBER}",
                   re.IGNORECASE)
_PLAIN = re.compile(rf"^\s*{_NUMBER}\s*$")
_STAGES = [("iPSC", ("induced pluripotent", "ipsc", "ips cell")),
           ("ESC", ("embryonic stem", "esc", "hesc")),
           ("fibroblast", ("fibroblast", "hdf"))]


def _number_in(pattern: re.Pattern, text) -> float | None:
    """The number of the first ``pattern`` match in ``text`` (or ``text`` itself when it is a
    bare number), else None."""
    text = "" if text is None else str(text)
    match = pattern.search(text) or _PLAIN.search(text)
    return None if match is None else float(next(g for g in match.groups() if g is not None))


def _first_in_fields(pattern: re.Pattern, row: pd.Series, fields: list[str]) -> float | None:
    return next((v for f in fields if (v := _number_in(pattern, row[f])) is not None), None)


def _stage(texts: list[str]) -> str | None:
    joined = " ".join(t.lower() for t in texts if t)
    for stage, words in _STAGES:
        if any(re.search(rf"\b{re.escape(w)}", joined) for w in words):
            return stage
    return None


def _time_fields(obs: pd.DataFrame, words: tuple[str, ...]) -> list[str]:
    """Characteristics keys that name a time (e.g. 'time point', 'gestational age (weeks)')."""
    return [c for c in obs.columns if any(w in c.lower() for w in words)]


def reprogramming_design(obs: pd.DataFrame, path) -> pd.DataFrame:
    """GSE54848's design as typed columns: ``day`` after transfection (float; 0 for the parental
    fibroblasts, NaN for iPSC and ESC lines), ``stage`` (fibroblast, reprogramming, iPSC, ESC)
    and ``tissue`` = Fibroblast. The day is read from a characteristics field naming a time or
    day, else from the title (``Day3_...``, ``day 7``); a sample with neither a day nor a
    recognisable cell type is an error naming the file, the sample and the fields read."""
    fields = _time_fields(obs, ("day", "time"))
    cell_fields = [c for c in obs.columns if "cell" in c.lower()]
    texts = [c for c in ("title", "source_name_ch1", *cell_fields) if c in obs.columns]
    day, stage = [], []
    for sample, row in obs.iterrows():
        found = _first_in_fields(_DAY, row, fields)
        if found is None and _DAY.search(str(row.get("title") or "")):
            found = _number_in(_DAY, row["title"])
        kind = _stage([str(row[c]) for c in texts if row[c] is not None])
        # a sample with a day belongs to the time course unless its cell type is a stem-cell line
        declared = _stage([str(row[c]) for c in cell_fields if row[c] is not None])
        if found is not None and declared not in ("iPSC", "ESC"):
            stage.append("fibroblast" if found == 0 else "reprogramming")
            day.append(found)
        elif kind is not None:
            stage.append(kind)
            day.append(0.0 if kind == "fibroblast" else np.nan)
        else:
            raise DataFormatError(
                f"{path}: sample {sample!r} has no day after transfection (fields "
                f"{fields or 'naming a day or time'} and 'title') and no recognisable cell type "
                f"(fields {texts})")
    design = pd.DataFrame({"day": np.asarray(day, float), "stage": stage}, index=obs.index)
    design["tissue"] = "Fibroblast"
    return design


def fetal_design(obs: pd.DataFrame, path) -> pd.DataFrame:
    """GSE76641's design as typed columns: ``weeks`` after last menstruation (float, from a
    characteristics field naming weeks, gestation or development; '12', '12 weeks', '12w' and
    'week 12' all parse), ``tissue`` (field 'tissue', else the source name) and ``age`` in years
    relative to birth at 40 weeks (negative: before birth). Unparseable weeks are an error
    naming the file, the sample and the field."""
    fields = _time_fields(obs, ("week", "gestation", "menstruation", "development"))
    if not fields:
        raise DataFormatError(f"{path}: no characteristics field naming weeks or gestation "
                              f"(fields: {list(obs.columns)})")
    tissue_field = next((c for c in obs.columns if c.lower() == "tissue"), "source_name_ch1")
    if tissue_field not in obs.columns:
        raise DataFormatError(f"{path}: no field 'tissue' or '!Sample_source_name_ch1'")
    weeks = []
    for sample, row in obs.iterrows():
        value = _first_in_fields(_WEEK, row, fields)
        if value is None:
            raise DataFormatError(f"{path}: sample {sample!r}: no weeks in field(s) {fields} "
                                  f"(values {[row[f] for f in fields]})")
        weeks.append(value)
    weeks = np.asarray(weeks, float)
    return pd.DataFrame({"weeks": weeks, "tissue": obs[tissue_field].astype(str).str.strip(),
                         "age": age_from_gestational_weeks(weeks)}, index=obs.index)


# The validation series of the paper: registry key and design parser.
VALIDATION_SERIES = {
    "GSE54848": ("geo_gse54848_series_matrix", reprogramming_design),
    "GSE76641": ("geo_gse76641_series_matrix", fetal_design),
}


def with_design(adata: ad.AnnData, series: str, path) -> ad.AnnData:
    """The series' design columns (typed) joined to its obs, plus ``modality`` = methylation."""
    _, parser = VALIDATION_SERIES[series]
    design = parser(adata.obs, path)
    adata.obs = adata.obs.drop(columns=[c for c in design if c in adata.obs]).join(design)
    adata.obs["modality"] = "methylation"
    adata.uns["series"] = series
    return adata


def load_validation_series(series: str, keep: set[str] | None = None) -> ad.AnnData:
    """GSE54848 or GSE76641 from the registry (hash-checked), design parsed into typed columns."""
    if series not in VALIDATION_SERIES:
        raise KeyError(f"unknown validation series {series!r}; known: {list(VALIDATION_SERIES)}")
    adata = load_series_matrix(VALIDATION_SERIES[series][0], keep=keep)
    return with_design(adata, series, adata.uns["path"])
