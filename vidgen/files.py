"""Atomic file writes: the one way vidgen puts a finished file in place.

Every artefact is written to a temporary file in the destination's directory and renamed over the
destination only once complete, so a crash, a broken download or a failed ffmpeg run never leaves a
half-written file that a resumed run would take for a finished one. The temporary file lives in the
same directory because a rename is only atomic within one filesystem.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PART_MARKER = ".part"


def private_mode() -> int:
    """0700; 0711 (others may pass through, never list) when running as root.

    Run as root, the embedded PostgreSQL runs as its own system user, which must pass through
    VIDGEN_HOME to its data directory `.vidgen/postgres/` by absolute path (a checkpoint opens
    `global/pg_control` that way): a 0700 home made it PANIC. Files holding secrets are 0600 either way.
    """
    return 0o711 if os.geteuid() == 0 else 0o700


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter (`private_mode`), made with any missing parents (the same).

    VIDGEN_HOME holds tokens, the local Notion store and the webhook key; a video's workspace holds
    its unpublished media and resumable-upload notes. Another local user must not list or read them.
    A directory that already exists is narrowed too (a `.vidgen/` made by an earlier version).
    """
    path = Path(path)
    mode = private_mode()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=mode, exist_ok=True)
        folder.chmod(mode)  # mkdir's mode passes through the umask
    if path.stat().st_uid == os.getuid():
        path.chmod(mode)
    return path


def partial_path(dst: Path) -> Path:
    """A fresh, unused name beside `dst` that keeps its suffix (ffmpeg picks the format from it).

    The name is hidden (leading dot) and carries `PART_MARKER`, so leftovers are easy to recognise.
    """
    return dst.with_name(f".{dst.name}.{secrets.token_hex(4)}{PART_MARKER}{dst.suffix}")


@contextmanager
def atomic_path(dst: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dst`; rename it over `dst` if the block succeeds, else remove it.

    For code that lets another writer (ffmpeg, an SDK, a streamed download) create the file. The path
    does not exist yet when yielded, so the writer creates it with the usual permissions.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(dst)
    try:
        yield tmp
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(dst: Path, data: bytes, *, mode: int = 0o666) -> None:
    """Write `data` to `dst` atomically; `mode` (before the umask) is the new file's permissions.

    Pass `mode=0o600` for secrets: the file is created with those bits, never readable by others
    even for an instant.
    """
    with atomic_path(dst) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def atomic_write_text(dst: Path, text: str, *, mode: int = 0o666) -> None:
    """Write `text` to `dst` atomically as UTF-8 (see `atomic_write_bytes`)."""
    atomic_write_bytes(dst, text.encode("utf-8"), mode=mode)
