"""Registry files that live inside published package distributions: fetched (a wheel with pip in
hash-checking mode, an sdist from a simple index), both hashes checked, no network needed for
these tests (a local wheel folder and a file:// index the tests build themselves)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest

from helpers.data import package_files, registry
from helpers.data.package_files import DistributionError, PackageSource
from helpers.data.registry import DataUnavailableError, HashMismatchError, RegistryEntry, fetch

MEMBER = b"gene,age_r\nCD28,-0.41\nLRRN3,-0.52\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_wheel(folder, member_bytes=MEMBER) -> bytes:
    """A minimal valid wheel demo_pkg 1.0 holding demo_pkg/data/stats.csv."""
    buffer = io.BytesIO()
    dist = "demo_pkg-1.0.dist-info"
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("demo_pkg/__init__.py", "")
        wheel.writestr("demo_pkg/data/stats.csv", member_bytes)
        wheel.writestr(f"{dist}/METADATA",
                       "Metadata-Version: 2.1\nName: demo_pkg\nVersion: 1.0\n")
        wheel.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                       "Root-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{dist}/RECORD", "")
    data = buffer.getvalue()
    (folder / "demo_pkg-1.0-py3-none-any.whl").write_bytes(data)
    return data


def build_sdist(folder, member_bytes=MEMBER) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as sdist:
        info = tarfile.TarInfo("demo_pkg-1.0/data/stats.csv")
        info.size = len(member_bytes)
        sdist.addfile(info, io.BytesIO(member_bytes))
    data = buffer.getvalue()
    (folder / "demo_pkg-1.0.tar.gz").write_bytes(data)
    return data


def entry_for(distribution: str, distribution_bytes: bytes, member: str,
              member_sha: str | None = None) -> RegistryEntry:
    return RegistryEntry(
        key="demo_stats", title="demo", path="demo/stats.csv",
        url="https://pypi.org/project/demo_pkg/1.0/", sha256=member_sha or sha(MEMBER),
        size=len(MEMBER), license="MIT", citation="none", description="test member",
        package=PackageSource("demo_pkg", "1.0", distribution, sha(distribution_bytes), member))


@pytest.fixture
def offline(monkeypatch, tmp_path, isolated_cache):
    """No mirror; pip and the simple index point at local folders only."""
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv(package_files.PIP_ARGS_ENV, f"--no-index --find-links {wheels}")
    index = tmp_path / "simple"
    (index / "demo-pkg").mkdir(parents=True)
    monkeypatch.setenv(package_files.INDEX_ENV, index.as_uri())
    return wheels, index


def test_member_of_a_wheel_is_fetched_with_pip_and_both_hashes_checked(offline, isolated_cache):
    wheels, _ = offline
    entry = entry_for("demo_pkg-1.0-py3-none-any.whl", build_wheel(wheels),
                      "demo_pkg/data/stats.csv")
    path = fetch(entry.key, {entry.key: entry})
    assert path.read_bytes() == MEMBER
    assert (isolated_cache / "downloads" / "demo" / "stats.csv").read_bytes() == MEMBER
    assert (isolated_cache / "distributions" / "demo_pkg-1.0-py3-none-any.whl").is_file()
    # a second fetch reuses the verified member without pip
    (wheels / "demo_pkg-1.0-py3-none-any.whl").unlink()
    assert fetch(entry.key, {entry.key: entry}).read_bytes() == MEMBER


def test_member_of_an_sdist_comes_from_the_simple_index(offline, isolated_cache):
    _, index = offline
    data = build_sdist(index / "demo-pkg")
    (index / "demo-pkg" / "index.html").write_text(
        f'<a href="demo_pkg-1.0.tar.gz#sha256={sha(data)}">demo_pkg-1.0.tar.gz</a>')
    entry = entry_for("demo_pkg-1.0.tar.gz", data, "demo_pkg-1.0/data/stats.csv")
    assert fetch(entry.key, {entry.key: entry}).read_bytes() == MEMBER


def test_a_distribution_with_another_hash_is_refused(offline, isolated_cache):
    wheels, _ = offline
    build_wheel(wheels)
    entry = entry_for("demo_pkg-1.0-py3-none-any.whl", b"other bytes", "demo_pkg/data/stats.csv")
    with pytest.raises(DataUnavailableError, match="demo_stats.*demo_pkg==1.0"):
        fetch(entry.key, {entry.key: entry})
    assert not (isolated_cache / "downloads" / "demo" / "stats.csv").exists()


def test_a_member_with_another_hash_is_refused(offline, isolated_cache):
    wheels, _ = offline
    entry = entry_for("demo_pkg-1.0-py3-none-any.whl", build_wheel(wheels, b"changed\n"),
                      "demo_pkg/data/stats.csv")
    with pytest.raises(HashMismatchError, match="member demo_pkg/data/stats.csv"):
        fetch(entry.key, {entry.key: entry})
    assert not (isolated_cache / "downloads" / "demo" / "stats.csv").exists()


def test_a_missing_member_is_named(offline, isolated_cache):
    wheels, _ = offline
    entry = entry_for("demo_pkg-1.0-py3-none-any.whl", build_wheel(wheels),
                      "demo_pkg/data/absent.csv")
    with pytest.raises(DataUnavailableError, match="no member 'demo_pkg/data/absent.csv'"):
        fetch(entry.key, {entry.key: entry})


def test_extract_member_refuses_a_file_that_is_no_archive(tmp_path):
    bogus = tmp_path / "demo.whl"
    bogus.write_text("not an archive")
    with pytest.raises(DistributionError, match="neither a zip"):
        package_files.extract_member(bogus, "x", tmp_path / "out")


def test_registry_package_field_must_be_complete(tmp_path):
    import yaml

    entry = {"key": "x", "title": "t", "path": "a", "url": "u", "sha256": "0" * 64, "size": 1,
             "license": "l", "citation": "c", "description": "d",
             "package": {"name": "p", "version": "1"}}
    bad = tmp_path / "registry.yml"
    bad.write_text(yaml.safe_dump({"files": [entry]}))
    with pytest.raises(ValueError, match=r"'x': field package lacks \['distribution'"):
        registry.load_registry(bad)
