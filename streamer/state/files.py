"""File operations on state directories that a kill -9 (or a power cut) cannot leave half done.

A worker may die at any instruction. A file it rewrites must then hold the old content
or the new one, never a prefix of either; a directory it deletes must be there whole or
gone, never a store with some of its files removed (RocksDB refuses to open that, and a
worker that stops on it would stop again at every restart).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

#: Suffix of a directory on its way out: renamed to it at once, then deleted at leisure.
REMOVING_SUFFIX = ".removing"


def sync_dir(directory: Path) -> None:
    """Make the directory's entries (a rename, a new file) durable; file systems that refuse are left as they are."""
    with contextlib.suppress(OSError):
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data``: a temporary file, synced, then renamed over it."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync_dir(path.parent)


def remove_dir(path: Path) -> None:
    """Delete a directory tree as one step: renamed aside first, so a crash leaves it whole or absent.

    What a crash leaves of the renamed copy is deleted by the next ``remove_dir`` of the same
    path, or by ``finish_removals``.
    """
    trash = path.with_name(path.name + REMOVING_SUFFIX)
    shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(path, trash)
    except FileNotFoundError:
        return
    sync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def finish_removals(directory: Path) -> None:
    """Delete what crashed ``remove_dir`` calls left in ``directory``."""
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            if entry.name.endswith(REMOVING_SUFFIX):
                shutil.rmtree(entry, ignore_errors=True)
