"""Gate previews on the Notion page, read back through notion-client from the local Notion server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vidgen.media.ffmpeg import probe, run_ffmpeg
from vidgen.media.synthetic import make_color_clip
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket
from vidgen.previews import (
    AUDIO_KBPS,
    WORKSPACE_MAX_BYTES,
    PreviewItem,
    describe_page_blocks,
    preview_seconds,
    publish_gate_previews,
    video_kbps,
)

FAST = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.02, jitter_s=0.0)
PARENT = {"type": "page_id", "page_id": "0c1b2a39-48d7-4e65-a3f2-1b0c9d8e7f6a"}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Source assets as the pipeline makes them: 1920x1080 PNG stills, a clip, narration, a final video."""
    root = tmp_path_factory.mktemp("assets")
    files: dict[str, Path] = {}
    for n, color in enumerate(("red", "green", "blue"), start=1):
        files[f"image{n}"] = root / f"scene-{n:02d}.png"
        run_ffmpeg(["-f", "lavfi", "-i", f"color=c={color}:s=1920x1080", "-frames:v", "1", str(files[f"image{n}"])])
    files["clip"] = make_color_clip(root / "clip-01.mp4", duration_s=12, width=1280, height=720, fps=24)
    files["narration"] = root / "narration.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=3", str(files["narration"])])
    files["final"] = root / "final.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=1920x1080:rate=24:duration=3", "-f", "lavfi", "-i",
                "sine=frequency=220:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                str(files["final"])])  # fmt: skip
    return files


def gateway_for(server, **kwargs: Any) -> NotionGateway:
    return NotionGateway(server.token, base_url=server.base_url, limiter=TokenBucket.unlimited(), retry=FAST, **kwargs)


@pytest.fixture
def gateway(notion_server) -> Iterator[NotionGateway]:
    with gateway_for(notion_server) as gw:
        yield gw


@pytest.fixture
def page_id(notion_client_sync) -> str:
    return notion_client_sync.pages.create(parent=PARENT, properties={"title": {"title": [{"text": {"content": "Card"}}]}})["id"]


def images(media, numbers=(1, 2, 3)) -> list[PreviewItem]:
    return [PreviewItem(scene_number=n, kind="image", path=media[f"image{n}"], caption=f"prompt for scene {n}")
            for n in numbers]  # fmt: skip


def rounds(client, page_id) -> list[dict[str, Any]]:
    return client.blocks.children.list(page_id)["results"]


def texts(blocks) -> list[str]:
    return ["".join(r["plain_text"] for r in b[b["type"]].get("rich_text", [])) for b in blocks]


def test_a_gates_images_land_on_the_page_numbered_as_redo_needs(media, gateway, page_id, notion_client_sync, tmp_path):
    report = publish_gate_previews(gateway, page_id, "assets", 1, images(media), preview_dir=tmp_path)

    assert report.problems == [] and report.page_written
    assert report.attached == ["Scene 1 (image)", "Scene 2 (image)", "Scene 3 (image)"]
    assert report.notion_requests == 3 * 2 + 1  # create + send per file, one append
    (heading,) = rounds(notion_client_sync, page_id)
    assert heading["type"] == "heading_2" and heading["heading_2"]["is_toggleable"] and heading["has_children"]
    assert texts([heading]) == ["Images — round 1"]
    children = notion_client_sync.blocks.children.list(heading["id"])["results"]
    assert [b["type"] for b in children] == ["paragraph", "image"] * 3
    assert texts(children[0::2]) == [f"Scene {n} — prompt for scene {n}" for n in (1, 2, 3)]
    still = tmp_path / "downloaded.jpg"
    still.write_bytes(httpx.get(children[3]["image"]["file"]["url"]).content)
    assert still.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert probe(still).video.width == 1280


def test_a_redo_round_adds_only_the_redone_scenes_and_keeps_earlier_rounds_folded(media, gateway, page_id, notion_client_sync):
    publish_gate_previews(gateway, page_id, "assets", 1, images(media))
    report = publish_gate_previews(gateway, page_id, "assets", 2, images(media, numbers=(2,)))

    assert report.notion_requests == 3
    first, second = rounds(notion_client_sync, page_id)
    assert texts([first, second]) == ["Images — round 1", "Images — round 2"]
    assert all(r["heading_2"]["is_toggleable"] and r["has_children"] for r in (first, second))
    assert len(notion_client_sync.blocks.children.list(first["id"])["results"]) == 6  # round 1 untouched
    redone = notion_client_sync.blocks.children.list(second["id"])["results"]
    assert texts(redone[:1]) == ["Scene 2 — prompt for scene 2"] and redone[1]["type"] == "image"

    lines = describe_page_blocks(gateway, page_id)
    assert lines[0] == "▸ ## Images — round 1" and "▸ ## Images — round 2" in lines
    assert "    Scene 2 — prompt for scene 2" in lines
    assert sum(line.startswith("    [image] http://") for line in lines) == 4


def test_clip_narration_and_final_previews_fit_a_free_workspace(media, gateway, page_id, notion_client_sync, tmp_path):
    items = [PreviewItem(scene_number=1, kind="video", path=media["clip"], caption="a slow pan"),
             PreviewItem(kind="audio", path=media["narration"], caption="Narration")]  # fmt: skip
    assert publish_gate_previews(gateway, page_id, "videos", 1, items, preview_dir=tmp_path).problems == []
    clip = probe(tmp_path / "videos-scene-01-clip-01.mp4")
    assert clip.duration_s == pytest.approx(10, abs=0.2) and clip.video.height == 360
    assert probe(tmp_path / "videos-narration.m4a").audio is not None

    final = [PreviewItem(kind="video", path=media["final"], caption="Final cut"),
             PreviewItem(kind="image", path=media["image1"], caption="Thumbnail")]  # fmt: skip
    report = publish_gate_previews(gateway, page_id, "final", 1, final, preview_dir=tmp_path)
    assert report.problems == []
    assert probe(tmp_path / "final-final.mp4").video.height == 480
    assert all(p.stat().st_size < WORKSPACE_MAX_BYTES for p in tmp_path.iterdir())
    heading = rounds(notion_client_sync, page_id)[-1]
    kinds = [b["type"] for b in notion_client_sync.blocks.children.list(heading["id"])["results"]]
    assert kinds == ["paragraph", "video", "paragraph", "image"]


@pytest.mark.parametrize("duration", [30.0, 120.0, 600.0, 3600.0])
def test_the_bitrate_budget_keeps_any_final_video_preview_under_the_limit(duration):
    shown = preview_seconds(duration, WORKSPACE_MAX_BYTES)
    kbps = video_kbps(shown, WORKSPACE_MAX_BYTES, ceiling=1200)
    assert (kbps + AUDIO_KBPS) * shown * 1000 / 8 < WORKSPACE_MAX_BYTES
    assert shown == duration if duration <= 120 else 120 < shown < duration


def test_a_short_video_gets_the_ceiling_bitrate():
    assert video_kbps(3, WORKSPACE_MAX_BYTES, ceiling=1200) == 1200


# --- bad input: the gate still opens, with a note on the page ----------------------------------------
def notes_on(client, page_id) -> list[str]:
    found = []
    for heading in rounds(client, page_id):
        children = client.blocks.children.list(heading["id"])["results"]
        found += [t for b, t in zip(children, texts(children)) if b["type"] == "callout"]
    return found


def test_a_file_missing_on_disk_becomes_a_note(media, gateway, page_id, notion_client_sync, tmp_path):
    items = images(media, numbers=(1,)) + [PreviewItem(scene_number=2, kind="image", path=tmp_path / "gone.png")]
    report = publish_gate_previews(gateway, page_id, "assets", 1, items)
    assert report.attached == ["Scene 1 (image)"]
    assert [p.label for p in report.problems] == ["Scene 2 (image)"] and "missing on disk" in report.problems[0].reason
    (note,) = notes_on(notion_client_sync, page_id)
    assert note.startswith("Preview missing — Scene 2 (image): the file is missing on disk")
    assert report.notion_requests == 2 + 1


def test_a_preview_larger_than_the_workspace_allows_becomes_a_note(media, notion_server, gateway, page_id, notion_client_sync):
    notion_server.file_uploads.max_file_bytes = 2000
    report = publish_gate_previews(gateway, page_id, "assets", 1, images(media, numbers=(1,)))
    assert len(report.problems) == 1 and "file size limit" in report.problems[0].reason
    (note,) = notes_on(notion_client_sync, page_id)
    assert "Scene 1 (image)" in note and "file size limit" in note


def test_an_upload_that_expires_before_it_is_attached_becomes_a_note(media, notion_server, gateway, page_id, notion_client_sync):
    moments = iter(range(1_800_000_000, 1_900_000_000, 4000))  # every look at the clock is 4000 s later
    notion_server.file_uploads.clock = lambda: float(next(moments))
    report = publish_gate_previews(gateway, page_id, "assets", 1, images(media, numbers=(1, 2)))
    assert report.page_written and report.attached == []
    assert [p.label for p in report.problems] == ["Scene 1 (image)", "Scene 2 (image)"]
    assert all("expired" in p.reason for p in report.problems)
    assert len(notes_on(notion_client_sync, page_id)) == 2


def test_a_page_deleted_while_uploading_is_reported_not_raised(media, notion_server, page_id, notion_client_sync):
    class TrashesThePageMidway(NotionGateway):
        def upload_file(self, path: Path, content_type: str) -> str:
            upload_id = super().upload_file(path, content_type)
            notion_client_sync.pages.update(page_id, in_trash=True)
            return upload_id

    with TrashesThePageMidway(notion_server.token, base_url=notion_server.base_url,
                              limiter=TokenBucket.unlimited(), retry=FAST) as gw:  # fmt: skip
        report = publish_gate_previews(gw, page_id, "assets", 1, images(media, numbers=(1, 2)))
    assert not report.page_written and report.attached == []
    assert len(report.problems) == 2 and all("archived" in p.reason for p in report.problems)


class RateLimitStorm(httpx.BaseTransport):
    """Every file upload and block request answers 429; everything else reaches the server."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "/v1/file_uploads" in request.url.path or "/v1/blocks" in request.url.path:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={
                "object": "error", "status": 429, "code": "rate_limited", "message": "You have been rate limited."})
        return self.inner.handle_request(request)


def test_a_429_storm_past_the_gateways_retries_is_reported_not_raised(media, notion_server, page_id):
    client = httpx.Client(transport=RateLimitStorm(), base_url=notion_server.base_url)
    with gateway_for(notion_server, client=client) as gw:
        report = publish_gate_previews(gw, page_id, "assets", 1, images(media, numbers=(1, 2)))
    client.close()
    assert not report.page_written and len(report.problems) == 2
    assert all("rate limiting" in p.reason for p in report.problems)
    assert report.notion_requests == 2 * FAST.attempts + FAST.attempts + FAST.attempts  # uploads, append, note


def test_describe_says_when_a_page_cannot_be_read(gateway):
    (line,) = describe_page_blocks(gateway, "5b0b4f6e-2a3c-4c1d-9e8f-0a1b2c3d4e5f")
    assert line.startswith("(the page's blocks could not be read")
