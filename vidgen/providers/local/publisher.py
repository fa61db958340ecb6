"""The local publisher: files a finished video where a person (or a later upload) can find it.

It stands in for YouTube offline with the same contract: a URL and a stable video id come back, and
publishing the same page again lands in the same folder with the same URL instead of a duplicate.
Files are hard-linked when the output folder is on the same disk as the workspace (no copy of a
large video), copied otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from vidgen.channels import Channel
from vidgen.errors import InvalidInputError
from vidgen.files import atomic_path, atomic_write_text
from vidgen.media.captions import chapter_lines
from vidgen.models import Cost
from vidgen.providers.base import PublishRequest, PublishResult, VideoMetadata
from vidgen.providers.settings import ProviderSettings

METADATA_FILE = "metadata.json"
DESCRIPTION_LIMIT = 5000


def slugify(text: str, *, max_length: int = 60) -> str:
    """A filesystem- and URL-safe folder name from a title ("Café, 1812!" -> "cafe-1812")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "video"


def short_page_id(page_id: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]", "", page_id)[:8].lower() or "page"


def local_video_id(channel_id: str, page_id: str) -> str:
    """An 11-character id like YouTube's, derived from channel and page so it never changes."""
    digest = hashlib.sha256(f"{channel_id}\x1f{page_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def description_with_chapters(metadata: VideoMetadata) -> str:
    """The description plus the chapter lines YouTube turns into chapters ("0:00 Intro")."""
    body = metadata.description.rstrip()
    if not metadata.chapters:
        return body[:DESCRIPTION_LIMIT]
    chapters = "\n".join(chapter_lines(metadata.chapters))
    if chapters in body:
        return body[:DESCRIPTION_LIMIT]
    room = DESCRIPTION_LIMIT - len(chapters) - 2
    return f"{body[:room].rstrip()}\n\n{chapters}".lstrip()


def _place(src: Path, dst: Path) -> None:
    """Put `src` at `dst` atomically: a hard link when possible, else a copy."""
    if dst.exists() and os.path.samefile(src, dst):
        return
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)


class LocalPublisher:
    name = "local"

    def _folder_for(self, request: PublishRequest) -> Path:
        """The page's folder: the one already holding this page id if there is one (titles change)."""
        short = short_page_id(request.page_id)
        root = request.output_dir
        if root.is_dir():
            for existing in sorted(root.glob(f"*-{short}")):
                meta = existing / METADATA_FILE
                try:
                    if json.loads(meta.read_text(encoding="utf-8")).get("page_id") == request.page_id:
                        return existing
                except (OSError, ValueError):
                    continue
        return root / f"{slugify(request.metadata.title)}-{short}"

    def publish(self, request: PublishRequest) -> PublishResult:
        files = [("video", request.video_path), ("thumbnail", request.thumbnail_path)]
        if request.captions_path is not None:
            files.append(("captions", request.captions_path))
        for what, path in files:
            if not path.is_file():
                raise InvalidInputError(f"{what} {path} does not exist", provider=self.name)

        folder = self._folder_for(request)
        folder.mkdir(parents=True, exist_ok=True)
        video = folder / f"video{request.video_path.suffix.lower() or '.mp4'}"
        thumbnail = folder / f"thumbnail{request.thumbnail_path.suffix.lower() or '.jpg'}"
        _place(request.video_path, video)
        _place(request.thumbnail_path, thumbnail)
        captions = None
        if request.captions_path is not None:
            captions = folder / f"captions{request.captions_path.suffix.lower() or '.srt'}"
            _place(request.captions_path, captions)

        video_id = local_video_id(request.channel_id, request.page_id)
        url = video.resolve().as_uri()
        meta_path = folder / METADATA_FILE
        previous: dict = {}
        if meta_path.is_file():
            try:
                previous = json.loads(meta_path.read_text(encoding="utf-8"))
            except ValueError:
                previous = {}
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        m = request.metadata
        metadata = {
            "video_id": video_id,
            "url": url,
            "title": m.title,
            "description": description_with_chapters(m),
            "tags": m.tags,
            "category": m.category_id,
            "privacy": m.privacy,
            "containsSyntheticMedia": m.contains_synthetic_media,
            "madeForKids": m.made_for_kids,
            "language": m.default_language,
            "chapters": [c.model_dump() for c in m.chapters],
            "page_id": request.page_id,
            "channel_id": request.channel_id,
            "files": {
                "video": video.name,
                "thumbnail": thumbnail.name,
                "captions": captions.name if captions else None,
            },
            "published_at": previous.get("published_at", now),
            "updated_at": now,
        }
        atomic_write_text(meta_path, json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
        return PublishResult(url=url, video_id=video_id, cost=Cost(usd=0.0, units=1, unit="upload"))


def create_publisher(settings: ProviderSettings, channel: Channel) -> LocalPublisher:
    return LocalPublisher()
