"""The data registry: hashes pinned, mirror used only on a match, clear errors otherwise."""

import re

import pytest
import yaml

from helpers.data import registry
from helpers.data.registry import (
    DataUnavailableError,
    HashMismatchError,
    RegistryEntry,
    fetch,
    load_registry,
)
from tests.conftest import SHARED_DATA, requires_real_data


def shared_rows(text: str) -> list[tuple[str, str, int]]:
    """(path, sha256, bytes) of every file row of ../shared/data/REGISTRY.md: the first table
    gives bytes as digits, the 2026-12-01 table as '29,492,646 B' after the source column."""
    rows = []
    for line in text.splitlines():
        match = re.match(r"^\| (\S+) \| .*? \| ([0-9a-f]{64}) \| ([\d,]+)(?: B)? \|", line)
        if match:
            rows.append((match.group(1), match.group(2), int(match.group(3).replace(",", ""))))
    return rows


def test_registry_lists_every_shared_file_with_its_hash():
    # files shipped inside an installed package (bundled_in) are not in the mirror
    entries = {k: e for k, e in load_registry().items()
               if e.sha256 is not None and not e.bundled_in}
    assert len(entries) == 27
    shared = SHARED_DATA / "REGISTRY.md"
    if not shared.is_file():
        pytest.skip("../shared/data/REGISTRY.md not present")
    rows = shared_rows(shared.read_text())
    assert len(rows) == 27
    by_path = {e.path: e for e in entries.values()}
    for path, sha, size in rows:
        assert by_path[path].sha256 == sha, path
        assert by_path[path].size == size, path


def test_package_members_name_their_distribution_and_hashes():
    members = {k: e for k, e in load_registry().items() if e.package is not None}
    assert sorted(members) == ["cd4t_aging_stats", "cd4t_pseudobulk", "gse69852_betas",
                               "gse74193_test", "gse74193_train"]
    for entry in members.values():
        assert entry.package.distribution.startswith(entry.package.name)
        assert re.fullmatch("[0-9a-f]{64}", entry.package.distribution_sha256)
        assert entry.url == f"https://pypi.org/project/{entry.package.name}/" \
                            f"{entry.package.version}/"


def test_registry_rejects_entry_without_field(tmp_path):
    bad = tmp_path / "registry.yml"
    bad.write_text(yaml.safe_dump({"files": [{"key": "x", "path": "a", "url": "u"}]}))
    with pytest.raises(ValueError, match=r"entry 0 \(x\) lacks field.*sha256"):
        load_registry(bad)


def test_registry_rejects_malformed_hash(tmp_path):
    entry = {"key": "x", "title": "t", "path": "a", "url": "u", "sha256": "abc", "size": 1,
             "license": "l", "citation": "c", "description": "d"}
    bad = tmp_path / "registry.yml"
    bad.write_text(yaml.safe_dump({"files": [entry]}))
    with pytest.raises(ValueError, match="'x' field sha256"):
        load_registry(bad)


def test_mirror_file_with_matching_hash_is_used(mirrored_scratch):
    _, entry, tmp_path = mirrored_scratch
    path = fetch(entry.key, {entry.key: entry})
    assert path.read_bytes() == (tmp_path / "clocks" / "scratch.csv").read_bytes()
    assert path.as_posix().endswith(f"/{entry.sha256}/clocks/scratch.csv")


def test_mirror_file_with_wrong_hash_is_refused(tmp_path, monkeypatch, isolated_cache,
                                                scratch_entry):
    content, entry = scratch_entry
    (tmp_path / "clocks").mkdir()
    (tmp_path / "clocks" / "scratch.csv").write_bytes(content + b"cg2,1.0\n")
    monkeypatch.setenv(registry.MIRROR_ENV, str(tmp_path))
    with pytest.raises(HashMismatchError) as err:
        fetch(entry.key, {entry.key: entry})
    assert "scratch_clock" in str(err.value) and entry.sha256 in str(err.value)
    assert "scratch.csv" in str(err.value)


def test_missing_file_without_mirror_or_network_names_everything(tmp_path, monkeypatch,
                                                                 isolated_cache, scratch_entry):
    _, entry = scratch_entry
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(registry.MIRROR_ENV, str(tmp_path / "empty"))
    with pytest.raises(DataUnavailableError) as err:
        fetch(entry.key, {entry.key: entry})
    message = str(err.value)
    for needle in (entry.key, entry.url, entry.sha256, registry.MIRROR_ENV):
        assert needle in message


def test_verified_cache_copy_is_reused_without_network(monkeypatch, isolated_cache,
                                                       scratch_entry):
    content, entry = scratch_entry
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)
    cached = isolated_cache / "downloads" / "clocks" / "scratch.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(content)
    assert fetch(entry.key, {entry.key: entry}).read_bytes() == cached.read_bytes()


def test_corrupted_cache_copy_is_not_used(monkeypatch, isolated_cache, scratch_entry):
    content, entry = scratch_entry
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)
    cached = isolated_cache / "downloads" / "clocks" / "scratch.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(content[:-3])
    with pytest.raises(DataUnavailableError, match="scratch_clock"):
        fetch(entry.key, {entry.key: entry})


def test_unknown_key_is_an_error():
    with pytest.raises(KeyError, match="not_a_file"):
        fetch("not_a_file")


@requires_real_data
def test_every_real_file_verifies_from_the_mirror():
    for key, entry in load_registry().items():
        if entry.sha256 is None:
            continue  # no offline copy of the papers' own sources
        path = fetch(key)
        assert registry.sha256_of(path) == entry.sha256
        assert path.stat().st_size == entry.size


def test_package_copy_with_a_wrong_hash_is_not_used(tmp_path, isolated_cache, monkeypatch):
    """A file an installed package ships is used only with the registry's hash; otherwise
    fetch goes on to the mirror and the download."""
    import hashlib

    content = b"the registered file"
    shipped = tmp_path / "bundled.h5ad"
    entry = RegistryEntry(key="bundled", title="t", path="pkg/x.h5ad",
                          url="http://127.0.0.1:9/x.h5ad",
                          sha256=hashlib.sha256(content).hexdigest(), size=len(content),
                          license="x", citation="x", description="x",
                          bundled_in="pkg:x.h5ad")
    monkeypatch.setattr(registry, "package_file", lambda e: shipped)
    shipped.write_bytes(b"not the registered file")
    with pytest.raises(DataUnavailableError, match="'bundled' is not available"):
        fetch("bundled", {"bundled": entry})
    shipped.write_bytes(content)
    assert fetch("bundled", {"bundled": entry}).read_bytes() == content


def test_shown_path_hides_the_local_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    inside = tmp_path / "cache" / "outputs" / "clock"
    assert registry.shown_path(inside) == "$AGING_BOOK_CACHE/outputs/clock"
    assert registry.shown_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
