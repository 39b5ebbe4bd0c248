"""What every reader of a real source format shares: the error that names the file and the
field, text streams of plain, gzip and zip files, checked parsing of numeric rows, unique ids,
ages written as text, and the unit checks (beta values, read counts, log-scale expression).
Each source format has its own module beside this one."""

from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

MISSING = {"", "NA", "NaN", "nan", "null"}
WEEKS_PER_YEAR = 52.18
TERM_WEEKS = 40  # weeks after the last menstruation at birth: age 0


class DataFormatError(ValueError):
    """A verified file does not hold what its loader expects; names the file and field."""


# what a damaged gzip or zip member, or bytes that are not UTF-8, raise while being read
UNREADABLE = (OSError, EOFError, zlib.error, zipfile.BadZipFile, UnicodeDecodeError)


class NamedStream(io.TextIOBase):
    """A text stream whose read errors (a truncated or corrupted gzip or zip, bytes that are
    not UTF-8) become :class:`DataFormatError` naming the file."""

    def __init__(self, stream, path: Path):
        self._stream, self._path = stream, path

    def _named(self, call, *args):
        try:
            return call(*args)
        except UNREADABLE as err:
            raise DataFormatError(f"{self._path}: unreadable ({type(err).__name__}: {err}); the "
                                  "file is damaged or not what its name says") from None

    def read(self, size=-1):
        return self._named(self._stream.read, size)

    def readline(self, size=-1):
        return self._named(self._stream.readline, size)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self):
        return True

    def close(self):
        self._stream.close()
        super().close()


def open_text(path: Path | str) -> io.TextIOBase:
    """A text stream of a plain file, a gzip file or the single .txt/.tsv member of a zip;
    a damaged archive is an error naming the file, when opened or while read."""
    path = Path(path)
    if path.suffix == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as err:
            raise DataFormatError(f"{path}: not a readable zip file ({err})") from None
        members = [m for m in archive.namelist() if m.endswith((".txt", ".tsv", ".csv"))]
        if len(members) != 1:
            raise DataFormatError(f"{path}: expected one table in the zip, found {members}")
        return NamedStream(io.TextIOWrapper(archive.open(members[0]), encoding="utf-8"), path)
    if path.suffix == ".gz":
        return NamedStream(gzip.open(path, "rt", encoding="utf-8"), path)
    return NamedStream(open(path, encoding="utf-8"), path)


def read_yaml(path: Path | str):
    """A YAML file's content; unreadable YAML is an error naming the file and the place."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DataFormatError(f"{path}: not readable YAML ({err})") from None


def require_unique(ids, what: str, path) -> None:
    """Refuse duplicated ids, naming the file and the field they came from."""
    index = pd.Index(list(ids))
    if index.has_duplicates:
        raise DataFormatError(f"{path}: duplicated {what}: {list(index[index.duplicated()][:3])}")


def numeric_rows(rows, n_values: int, path, ids_what: str, unit: str = "line",
                 value_range: tuple[float, float] | None = None, keep: set[str] | None = None
                 ) -> tuple[list[str], np.ndarray]:
    """Parse ``(number, cells)`` rows of an id then ``n_values`` numbers into ids and a float32
    matrix: missing values become NaN; a short row, a non-number, a value outside
    ``value_range`` or a duplicated id is an error naming the file, the row and the field.
    Rows whose id is not in ``keep`` (when given) are skipped after the width check."""
    ids, parsed = [], []
    for number, cells in rows:
        if len(cells) != n_values + 1:
            raise DataFormatError(f"{path}: {unit} {number} ({cells[0]!r}) has "
                                  f"{len(cells) - 1} values for {n_values} samples "
                                  "(truncated or malformed table)")
        if cells[0] != cells[0].strip():
            raise DataFormatError(f"{path}: {unit} {number} starts with the field "
                                  f"{cells[0]!r}, which has surrounding spaces")
        if keep is not None and cells[0] not in keep:
            continue
        values = [np.nan if v in MISSING else v for v in cells[1:]]
        try:
            row = np.asarray(values, dtype=np.float32)
        except ValueError:
            bad = next(v for v in values if not _is_number(v))
            raise DataFormatError(f"{path}: non-numeric value {bad!r} in field {cells[0]!r} "
                                  f"({unit} {number})") from None
        if value_range is not None and ((row < value_range[0]) | (row > value_range[1])).any():
            low, high = value_range
            raise DataFormatError(f"{path}: value outside [{low:g}, {high:g}] in field "
                                  f"{cells[0]!r} ({unit} {number})")
        ids.append(cells[0])
        parsed.append(row)
    require_unique(ids, ids_what, path)
    return ids, np.vstack(parsed) if parsed else np.empty((0, n_values), np.float32)


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def check_beta_values(betas: pd.DataFrame, path: Path | str) -> None:
    """Refuse beta values that are missing, non-numeric or outside [0, 1], naming the CpG
    (column) where the first one sits."""
    numeric_dtypes = all(pd.api.types.is_numeric_dtype(d) for d in betas.dtypes.unique())
    if not numeric_dtypes:
        numeric = betas.apply(pd.to_numeric, errors="coerce")
        bad = numeric.isna() & betas.notna()
        if bad.any().any():
            raise DataFormatError(f"{path}: non-numeric beta value in field "
                                  f"{bad.any().idxmax()!r}")
    else:
        numeric = betas
    values = numeric.to_numpy(dtype=float)
    for problem, mask in (("missing", np.isnan(values)),
                          ("outside [0, 1]", ~np.isnan(values) & ((values < 0) | (values > 1)))):
        if mask.any():
            column = betas.columns[int(np.argmax(mask.any(axis=0)))]
            what = "missing beta value" if problem == "missing" else "beta value outside [0, 1]"
            raise DataFormatError(f"{path}: {what} in field {column!r}")


def age_from_gestational_weeks(weeks) -> np.ndarray:
    """Age in years of a prenatal sample, from weeks after the last menstruation: negative
    before birth (term, 40 weeks, is age 0)."""
    return (np.asarray(weeks, dtype=float) - TERM_WEEKS) / WEEKS_PER_YEAR


_YEARS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:y|yr|yrs|year|years)\s*", re.I)
_WEEKS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:w|wk|wks|week|weeks)\s*", re.I)


def parse_age_text(text, where: str) -> tuple[float, float]:
    """An age written as text: ``'55 yr'`` (years) or ``'21wk'`` (weeks of gestation, a
    prenatal sample) -> (age in years, gestational weeks or NaN). Anything else (a range, a
    sum, a missing value) is an error naming ``where`` (file, sample and field)."""
    value = str(text)
    match = _YEARS.fullmatch(value)
    if match:
        return float(match.group(1)), float("nan")
    match = _WEEKS.fullmatch(value)
    if match:
        weeks = float(match.group(1))
        if not 4 <= weeks <= 45:
            raise DataFormatError(f"{where}: {weeks:g} weeks of gestation is outside 4-45")
        return float(age_from_gestational_weeks(weeks)), weeks
    raise DataFormatError(f"{where}: age {value!r} is neither years ('55 yr') nor weeks of "
                          "gestation ('21wk')")


# The largest value a log2-scale expression matrix plausibly holds: log2 of 1e9 (a million
# TPM is the whole library) is about 30. Linear counts, CPM, TPM or FPKM of thousands of genes
# always exceed it somewhere.
LOG_SCALE_MAX = 30.0


def looks_logged(values: pd.DataFrame) -> bool:
    """Whether a matrix is probably on a log scale already: every finite value at most
    :data:`LOG_SCALE_MAX` (counts and linear units of a whole transcriptome exceed it)."""
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    return finite.size > 0 and float(finite.max()) <= LOG_SCALE_MAX


def require_counts(values: pd.DataFrame, what: str = "input") -> None:
    """Refuse values that are not read counts (negative, non-integer, or already logged), with
    an error that says what was expected and what was found (a sparse matrix: its stored
    values)."""
    import scipy.sparse as sp

    array = values.data if sp.issparse(values) else np.asarray(values, dtype=float)
    array = np.asarray(array, dtype=float)
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: expected read counts, found {int((~np.isfinite(array)).sum())}"
                         " missing or infinite values")
    if (array < 0).any():
        raise ValueError(f"{what}: expected read counts, found negative values (min "
                         f"{array.min():.3g}): log-ratios or centred data?")
    fraction = np.abs(array - np.round(array))
    if (fraction > 1e-6).any():
        kind = "log-scale values" if looks_logged(array) else "normalised (non-integer) values"
        raise ValueError(f"{what}: expected read counts (non-negative integers), found {kind} "
                         f"(max {array.max():.3g}); pass raw counts, or skip this step")


def require_log_scale(values: pd.DataFrame, what: str = "input") -> None:
    """Refuse values that look unlogged (some value above :data:`LOG_SCALE_MAX`)."""
    if not looks_logged(values):
        raise ValueError(f"{what}: expected log-scale expression (e.g. log2(CPM + 1)), found "
                         f"values up to {np.nanmax(np.asarray(values, float)):.3g}; log them "
                         "first (log_expression)")
