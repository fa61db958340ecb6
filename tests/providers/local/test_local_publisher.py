"""The local publisher files the video, thumbnail, captions and metadata, idempotently per page."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from vidgen.channels import load_channels
from vidgen.errors import InvalidInputError
from vidgen.models import Chapter
from vidgen.providers.base import Publisher, PublishRequest, VideoMetadata
from vidgen.providers.local.publisher import LocalPublisher, create_publisher, slugify
from vidgen.providers.registry import build
from vidgen.providers.settings import ProviderSettings

PAGE_ID = "1f2e3d4c-5b6a-4789-8123-456789abcdef"


@pytest.fixture
def finished(tmp_path: Path) -> dict[str, Path]:
    final = tmp_path / "workspace" / "final"
    final.mkdir(parents=True)
    files = {"video": final / "video.mp4", "thumbnail": final / "video.jpg", "captions": final / "video.srt"}
    files["video"].write_bytes(b"\x00\x00\x00\x18ftypisom" + b"v" * 4000)
    files["thumbnail"].write_bytes(b"\xff\xd8\xff\xe0" + b"t" * 500)
    files["captions"].write_text("1\n00:00:00,400 --> 00:00:02,000\nHello.\n", encoding="utf-8")
    return files


def _request(files: dict[str, Path], out: Path, *, title: str = "The Retreat from Moscow, 1812!") -> PublishRequest:
    metadata = VideoMetadata(
        title=title,
        description="How an army of 600,000 melted away in the snow.",
        tags=["history", "napoleon"],
        chapters=[Chapter(start_s=0, title="Intro"), Chapter(start_s=75, title="The Berezina")],
        category_id="27",
        privacy="unlisted",
    )
    return PublishRequest(
        channel_id="chronicle_vault", page_id=PAGE_ID, video_path=files["video"], thumbnail_path=files["thumbnail"],
        captions_path=files["captions"], metadata=metadata, output_dir=out,
    )  # fmt: skip


def test_publish_files_everything_with_metadata(finished: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "published"
    result = LocalPublisher().publish(_request(finished, out))
    folder = out / "the-retreat-from-moscow-1812-1f2e3d4c"
    assert sorted(p.name for p in folder.iterdir()) == ["captions.srt", "metadata.json", "thumbnail.jpg", "video.mp4"]
    assert result.url.startswith("file://")
    assert Path(unquote(urlparse(result.url).path)) == (folder / "video.mp4").resolve()
    assert (folder / "video.mp4").read_bytes() == finished["video"].read_bytes()
    assert os.path.samefile(folder / "video.mp4", finished["video"])  # same disk: hard-linked, not copied
    assert len(result.video_id) == 11 and result.cost.usd == 0.0

    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    assert meta["title"] == "The Retreat from Moscow, 1812!"
    assert meta["description"].startswith("How an army")
    assert meta["description"].endswith("\n\n0:00 Intro\n1:15 The Berezina")
    assert meta["tags"] == ["history", "napoleon"]
    assert (meta["category"], meta["privacy"], meta["language"]) == ("27", "unlisted", "en")
    assert meta["containsSyntheticMedia"] is True and meta["madeForKids"] is False
    assert (meta["page_id"], meta["channel_id"]) == (PAGE_ID, "chronicle_vault")
    assert meta["video_id"] == result.video_id and meta["url"] == result.url
    assert meta["published_at"].endswith("+00:00")


def test_republishing_the_same_page_is_idempotent(finished: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "published"
    publisher = LocalPublisher()
    first = publisher.publish(_request(finished, out))
    published_at = json.loads(next(out.glob("*/metadata.json")).read_text())["published_at"]
    again = publisher.publish(_request(finished, out))
    retitled = publisher.publish(_request(finished, out, title="A New Title"))
    assert first == again == retitled
    folders = list(out.iterdir())
    assert len(folders) == 1
    meta = json.loads((folders[0] / "metadata.json").read_text())
    assert meta["title"] == "A New Title" and meta["published_at"] == published_at


def test_different_pages_get_different_folders_and_ids(finished: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "published"
    a = LocalPublisher().publish(_request(finished, out))
    other = _request(finished, out).model_copy(update={"page_id": "99999999-0000-4000-8000-000000000000"})
    b = LocalPublisher().publish(other)
    assert a.url != b.url and a.video_id != b.video_id
    assert len(list(out.iterdir())) == 2


def test_captions_are_optional(finished: dict[str, Path], tmp_path: Path) -> None:
    request = _request(finished, tmp_path / "out").model_copy(update={"captions_path": None})
    LocalPublisher().publish(request)
    meta = json.loads(next((tmp_path / "out").glob("*/metadata.json")).read_text())
    assert meta["files"]["captions"] is None


def test_missing_video_is_invalid_input(finished: dict[str, Path], tmp_path: Path) -> None:
    request = _request(finished, tmp_path / "out").model_copy(update={"video_path": tmp_path / "nope.mp4"})
    with pytest.raises(InvalidInputError, match="nope.mp4"):
        LocalPublisher().publish(request)
    assert not (tmp_path / "out").exists()


def test_factory_and_registry_build_a_publisher(repo_root: Path) -> None:
    channel = next(iter(load_channels(repo_root / "channels").values()))
    built = build("publisher", "local", ProviderSettings(), channel)
    assert isinstance(built, LocalPublisher) and isinstance(built, Publisher)
    assert create_publisher(ProviderSettings(), channel).name == "local"


def test_slugify() -> None:
    assert slugify("Café Society: 1920s Paris!") == "cafe-society-1920s-paris"
    assert slugify("???") == "video"
    assert len(slugify("word " * 40)) <= 60
