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
            name = key.strip().lower()
            column = columns.setdefault(name, [None] * len(samples))
            if column[i] is not None and column[i] != value.strip():
                raise DataFormatError(f"{path}: sample {samples[i]!r} lists characteristics key "
                                      f"{name!r} twice with different values ({column[i]!r}, "
                                      f"{value.strip()!r}); which one holds is ambiguous")
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
# The only ways a day or a week is read (whole value, case-insensitive): anything else that
# holds a number (a range, a sum, a sign, another unit) is refused, naming sample and field.
_DAY_FORMS = [re.compile(rf"\s*(?:day|d)[\s_:]*{_NUMBER}\s*", re.I),
              re.compile(rf"\s*{_NUMBER}\s*(?:d|days?)\s*", re.I),
              re.compile(rf"\s*{_NUMBER}\s*")]
_WEEK_FORMS = [re.compile(rf"\s*(?:week|wk|w)[\s_:]*{_NUMBER}\s*", re.I),
               re.compile(rf"\s*{_NUMBER}\s*(?:w|wk|wks|weeks?)\s*", re.I),
               re.compile(rf"\s*{_NUMBER}\s*")]
# weeks+days, the obstetric notation: '12+3' and '12+3 weeks' are 12 weeks and 3 days
_WEEKS_AND_DAYS = re.compile(r"\s*(\d+)\s*\+\s*([0-6])\s*(?:w|wk|wks|weeks?)?\s*", re.I)
# a day written in a sample title, e.g. 'Day3_rep1', 'HDF day 28', 'D7'
_TITLE_DAY = re.compile(r"(?<![a-z])(?:day|d)[\s_]*([+-]?)(\d+(?:\.\d+)?)(?![\d.])", re.I)


_STAGES = [("iPSC", ("induced pluripotent", "ipsc", "ips cell")),
           ("ESC", ("embryonic stem", "esc", "hesc")),
           ("fibroblast", ("fibroblast", "hdf"))]


def _read_number(text, forms, where: str, unit: str, examples: str) -> float | None:
    """The one number of ``text`` in one of the accepted ``forms``; None when the text holds
    no digit at all (e.g. 'iPSC', 'n/a'); any other text with a digit is an error naming
    ``where`` (file, sample and field)."""
    value = "" if text is None else str(text)
    if not re.search(r"\d", value):
        return None
    for form in forms:
        match = form.fullmatch(value)
        if match:
            return float(match.group(1))
    raise DataFormatError(f"{where}: {value!r} is not an unambiguous {unit} ({examples}); "
                          "ranges, sums, signs and other units are refused")


def _day_in_title(title, where: str) -> float | None:
    """The day written in a sample title, if any; a negative day or two different days in
    one title are refused."""
    found = _TITLE_DAY.findall(str(title or ""))
    if any(sign == "-" for sign, _ in found):
        raise DataFormatError(f"{where}: title {title!r} names a negative day")
    days = {float(number) for _, number in found}
    if len(days) > 1:
        raise DataFormatError(f"{where}: title {title!r} names several days {sorted(days)}")
    return days.pop() if days else None


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
    described = [c for c in ("source_name_ch1", *cell_fields) if c in obs.columns]
    day, stage = [], []
    for sample, row in obs.iterrows():
        found = None
        for field in fields:
            found = _read_number(row[field], _DAY_FORMS, f"{path}: sample {sample!r}, field "
                                 f"{field!r}", "day after transfection",
                                 "'day 7', '7 days', 'd7' or '7'")
            if found is not None:
                break
        if found is None and "title" in obs.columns:
            found = _day_in_title(row["title"], f"{path}: sample {sample!r}, field 'title'")
        kind = _stage([str(row[c]) for c in texts if row[c] is not None])
        # a stem-cell line (by its source or cell type) has no day after transfection
        declared = _stage([str(row[c]) for c in described if row[c] is not None])
        if found is not None and declared in ("iPSC", "ESC"):
            raise DataFormatError(
                f"{path}: sample {sample!r} has a day after transfection ({found:g}) but its "
                f"fields {described} describe an {declared} line; which holds is ambiguous")
        if found is not None:
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
        value = None
        for field in fields:
            value = _weeks(row[field], f"{path}: sample {sample!r}, field {field!r}")
            if value is not None:
                break
        if value is None:
            raise DataFormatError(f"{path}: sample {sample!r}: no weeks in field(s) {fields} "
                                  f"(values {[row[f] for f in fields]})")
        weeks.append(value)
    weeks = np.asarray(weeks, float)
    return pd.DataFrame({"weeks": weeks, "tissue": obs[tissue_field].astype(str).str.strip(),
                         "age": age_from_gestational_weeks(weeks)}, index=obs.index)


def _weeks(text, where: str) -> float | None:
    """Weeks of gestation: '12', '12 weeks', '12w', 'week 12', or weeks+days '12+3' (12 weeks
    and 3 days); anything else holding a number is refused (:func:`_read_number`)."""
    match = _WEEKS_AND_DAYS.fullmatch("" if text is None else str(text))
    if match:
        return int(match.group(1)) + int(match.group(2)) / 7
    return _read_number(text, _WEEK_FORMS, where, "number of weeks",
                        "'12', '12 weeks', '12w', 'week 12' or '12+3' (weeks+days)")


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
