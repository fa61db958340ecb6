"""A video's folder, `workspaces/{channel_id}/{page_id}/`, and its manifest of finished work.

The manifest is what makes every step idempotent across crashes, restarts and resumed runs: a step
whose output file exists, hashes to what was recorded, and was made from the same inputs is not made
(or paid for) again. A missing or corrupt file is never used; it is made again. Each entry is its own
small JSON file written atomically, so parallel tasks never contend for one manifest file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from vidgen.errors import VidgenError
from vidgen.files import atomic_write_text, private_dir
from vidgen.models import Cost

SUBDIRS = ("assets", "composites", "videos", "audio", "sfx", "final", "previews")


class ManifestEntry(BaseModel):
    key: str
    path: str  # relative to the workspace root
    sha256: str
    size: int
    fingerprint: str  # hash of the inputs the file was made from
    provider: str = ""
    cost: Cost = Cost()
    extra: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


def fingerprint(*parts: Any) -> str:
    """A stable hash of a step's inputs (pydantic models, strings, numbers, paths)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, BaseModel):
            data = part.model_dump(mode="json")
        elif isinstance(part, Path):
            data = str(part)
        else:
            data = part
        h.update(json.dumps(data, sort_keys=True, default=str).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class UnsafePath(VidgenError, ValueError):
    """A folder or file name that would lead outside the workspaces root."""


def under(root: Path, *parts: str) -> Path:
    """`root / parts…`, refused (UnsafePath) unless each part is one plain name and the result stays under `root`.

    Names come from Notion (page ids) and from manifests on disk; a `..`, a slash or an absolute
    path in one must not reach another video's folder or anything else on the machine.
    """
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise UnsafePath(f"{part!r} is not a plain folder name")
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafePath(f"{'/'.join(parts)} leads outside {root.name}/")
    return path


class Workspace:
    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def for_entry(cls, workspaces_root: Path, channel_id: str, page_id: str) -> Workspace:
        """`workspaces/<channel id>/<page id>/`, checked to stay under `workspaces_root`."""
        return cls(under(workspaces_root, channel_id, page_id))

    def ensure(self) -> Workspace:
        """Create the folders, owner only (0700): unpublished media and upload notes live here."""
        private_dir(self.root)
        for sub in (*SUBDIRS, "manifest"):
            private_dir(self.root / sub)
        return self

    def dir(self, sub: str) -> Path:
        if sub not in SUBDIRS:
            raise ValueError(f"unknown workspace folder {sub!r}; one of {SUBDIRS}")
        return self.root / sub

    def _entry_file(self, key: str) -> Path:
        return self.root / "manifest" / (key.replace("/", "__") + ".json")

    def lookup(self, key: str, fingerprint: str) -> ManifestEntry | None:
        """The recorded result for `key` if it is still intact and was made from these inputs."""
        entry_file = self._entry_file(key)
        if not entry_file.is_file():
            return None
        try:
            entry = ManifestEntry.model_validate_json(entry_file.read_text(encoding="utf-8"))
        except ValueError:
            return None
        if entry.fingerprint != fingerprint:
            return None
        path = self._inside(entry.path)
        if path is None or not path.is_file() or path.stat().st_size != entry.size or file_sha256(path) != entry.sha256:
            return None
        return entry

    def record(
        self,
        key: str,
        path: Path,
        fingerprint: str,
        *,
        provider: str = "",
        cost: Cost | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ManifestEntry:
        if not path.is_file() or path.stat().st_size == 0:
            raise ValueError(f"{key}: refusing to record {path}: missing or empty file")
        entry = ManifestEntry(
            key=key,
            path=str(path.resolve().relative_to(self.root.resolve())),
            sha256=file_sha256(path),
            size=path.stat().st_size,
            fingerprint=fingerprint,
            provider=provider,
            cost=cost or Cost(),
            extra=extra or {},
            created_at=datetime.now(timezone.utc),
        )
        atomic_write_text(self._entry_file(key), entry.model_dump_json(indent=2))
        return entry

    def entries(self) -> list[ManifestEntry]:
        folder = self.root / "manifest"
        if not folder.is_dir():
            return []
        return [ManifestEntry.model_validate_json(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]

    def _inside(self, relative: str) -> Path | None:
        """A manifest's file path under this workspace; None when it points elsewhere (a manifest edited by hand)."""
        path = self.root / relative
        return path if path.resolve().is_relative_to(self.root.resolve()) else None

    def abspath(self, entry: ManifestEntry) -> Path:
        path = self._inside(entry.path)
        if path is None:
            raise UnsafePath(f"manifest entry {entry.key} points outside its workspace")
        return path
