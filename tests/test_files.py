"""vidgen.files: a finished file appears whole or not at all, and nothing partial is left behind."""

from __future__ import annotations

import os
import stat

import pytest

from vidgen.files import atomic_path, atomic_write_bytes, atomic_write_text


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_path_renames_the_written_file_over_the_destination(tmp_path):
    dst = tmp_path / "out" / "clip.mp4"
    with atomic_path(dst) as tmp:
        assert tmp.parent == dst.parent and tmp.suffix == ".mp4"
        assert not tmp.exists() and not dst.exists()
        tmp.write_bytes(b"whole clip")
    assert dst.read_bytes() == b"whole clip"
    assert _leftovers(dst.parent) == ["clip.mp4"]


def test_atomic_path_failure_keeps_the_old_file_and_removes_the_partial(tmp_path):
    dst = tmp_path / "clip.mp4"
    dst.write_bytes(b"previous clip")
    with pytest.raises(RuntimeError, match="ffmpeg died"):
        with atomic_path(dst) as tmp:
            tmp.write_bytes(b"half a cl")
            raise RuntimeError("ffmpeg died")
    assert dst.read_bytes() == b"previous clip"
    assert _leftovers(tmp_path) == ["clip.mp4"]


def test_atomic_path_failure_before_anything_is_written_leaves_nothing(tmp_path):
    dst = tmp_path / "clip.mp4"
    with pytest.raises(ValueError):
        with atomic_path(dst):
            raise ValueError("no input")
    assert _leftovers(tmp_path) == []


def test_atomic_write_bytes_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    dst = tmp_path / "image.png"

    def refuse(src, dst_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(dst, b"\x89PNG...")
    assert _leftovers(tmp_path) == []


def test_atomic_write_text_replaces_and_writes_utf8(tmp_path):
    dst = tmp_path / "entry.json"
    atomic_write_text(dst, "old")
    atomic_write_text(dst, "Wölfe — ñ")
    assert dst.read_bytes() == "Wölfe — ñ".encode("utf-8")
    assert _leftovers(tmp_path) == ["entry.json"]


def test_mode_0600_gives_a_private_file(tmp_path):
    dst = tmp_path / "channel.token"
    atomic_write_bytes(dst, b"secret", mode=0o600)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o600


def test_default_mode_follows_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
