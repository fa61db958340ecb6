"""`vidgen demo` from an empty directory, as a newcomer types it (with shorter sample videos)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vidgen.media.ffmpeg import decode_audio, probe, rms_dbfs

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _short_channels(directory: Path) -> Path:
    directory.mkdir()
    for source in (REPO / "channels").glob("*.yaml"):
        data = yaml.safe_load(source.read_text())
        data["script"].update({"scenes": 2, "min_scenes": 1, "words_per_scene": 12})
        (directory / source.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


@pytest.mark.timeout(1500)  # a few minutes on an idle 2-core machine; the guard is for hangs
def test_demo_makes_a_video_per_sample_channel_then_reuses_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NOTION_", "VIDGEN_"))}
    env.update(
        VIDGEN_HOME=str(tmp_path / ".vidgen"),
        VIDGEN_WORKSPACES=str(tmp_path / "workspaces"),
        VIDGEN_CHANNELS_DIR=str(_short_channels(tmp_path / "channels")),
        VIDGEN_PREFECT_PORT=str(_free_port()),
        VIDGEN_NOTION_PORT=str(_free_port()),
        VIDGEN_WEBHOOK_PORT=str(_free_port()),
        COLUMNS="200",
    )

    def vidgen(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "vidgen"), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)

    try:
        first = vidgen("demo")
        out = first.stdout + first.stderr
        assert first.returncode == 0, out[-6000:]
        for gate in ("the images", "the animated clips", "the narration", "the finished video"):
            assert f"Reviewer approves {gate}" in out
        assert "Upload Complete" in out and "Done in" in out and "Prefect UI: http://127.0.0.1:" in out
        assert out.count("after it was queued (via webhook)") == 2, out[-6000:]
        assert "On the Notion page of" in out and "Images — round 1" in out  # the previews a reviewer sees

        videos = sorted((tmp_path / "workspaces").glob("*/*/final/*.mp4"))
        assert len(videos) == 2, videos
        for video in videos:
            info = probe(video)
            assert (info.video.codec, info.video.width, info.video.height, info.video.pix_fmt) == ("h264", 1920, 1080, "yuv420p")
            assert info.audio.codec == "aac" and info.subtitles
            assert info.duration_s >= 8
            assert rms_dbfs(decode_audio(video)) > -35  # narration and ambience, not silence
        published = sorted((tmp_path / "workspaces" / "published").glob("*/*/metadata.json"))
        assert len(published) == 2

        second = vidgen("demo")
        assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
        assert second.stdout.count("Reusing the existing entry") == 2
        assert "Created Notion entry" not in second.stdout
        assert sorted((tmp_path / "workspaces").glob("*/*/final/*.mp4")) == videos
    finally:
        down = vidgen("down", timeout=60)
        assert down.returncode == 0
