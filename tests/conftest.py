"""Shared fixtures: an isolated cache, a scratch registry, and the real-data mirror if present."""

import os
from pathlib import Path

import pytest

from helpers.data.registry import CACHE_ENV, MIRROR_ENV, RegistryEntry

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def real_mirror() -> Path | None:
    """The offline mirror of real files: $AGING_BOOK_DATA_MIRROR, else ../shared/data."""
    env = os.environ.get(MIRROR_ENV)
    if env:
        return Path(env)
    return SHARED_DATA if SHARED_DATA.is_dir() else None


requires_real_data = pytest.mark.skipif(
    real_mirror() is None, reason="no offline mirror of the real data files"
)


def pytest_configure(config):
    """The mirror for the whole session too, so that module-scoped fixtures (set up before
    any function fixture) read the real files from it rather than the network."""
    mirror = real_mirror()
    if mirror is not None:
        os.environ.setdefault(MIRROR_ENV, str(mirror))


@pytest.fixture(autouse=True)
def _real_mirror_env(monkeypatch):
    """Point every test at the real mirror unless the test overrides it."""
    mirror = real_mirror()
    if mirror is not None:
        monkeypatch.setenv(MIRROR_ENV, str(mirror))


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """An empty cache folder for this test only."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


@pytest.fixture
def scratch_entry():
    """A registry entry for a small file whose URL can never answer (a closed local port)."""
    content = b"CpGmarker,CoefficientTraining\ncg1,0.5\n"
    import hashlib

    return content, RegistryEntry(
        key="scratch_clock", title="scratch clock", path="clocks/scratch.csv",
        url="http://127.0.0.1:9/scratch.csv", sha256=hashlib.sha256(content).hexdigest(),
        size=len(content), license="CC0", citation="none", description="test file",
    )


@pytest.fixture
def mirrored_scratch(tmp_path, monkeypatch, isolated_cache, scratch_entry):
    """The scratch file in a mirror folder that ``AGING_BOOK_DATA_MIRROR`` points at."""
    content, entry = scratch_entry
    (tmp_path / "clocks").mkdir()
    (tmp_path / "clocks" / "scratch.csv").write_bytes(content)
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    return content, entry, tmp_path


def read_with_rdata(path):
    """The rdata library's reading of an R data file (the reference), its warnings about S4
    classes it has no constructor for muted."""
    import warnings

    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rdata.read_rda(str(path))
