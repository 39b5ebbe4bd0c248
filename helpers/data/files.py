"""Files written whole or not at all, folders swapped in whole, and locks between processes:
what the cache, the registry's hash record, saved clocks, chapter results and the chapter
runner share, so that no reader ever sees a half-written file and no two writers mix."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
from pathlib import Path


def write_whole(path: Path | str, content: str | bytes) -> None:
    """Write ``content`` to a temporary file beside ``path`` (named for this process and
    thread), then rename it into place: readers see the old file or the new one, never part."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    if isinstance(content, bytes):
        partial.write_bytes(content)
    else:
        partial.write_text(content)
    partial.replace(path)


def replace_folder(new: Path | str, target: Path | str) -> None:
    """Put the finished folder ``new`` in the place of ``target``: the old one is renamed
    aside first and removed only once ``new`` is in."""
    new, target = Path(new), Path(target)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    target.parent.mkdir(parents=True, exist_ok=True)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def locked(path: Path | str, wait: bool = True):
    """Hold an exclusive lock on the file ``path`` (created if needed) between processes;
    ``wait`` False raises BlockingIOError at once when another process holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
