"""Smoke test for scripts/bench_previews.py: a tiny video (2 scenes, 320x180) through the four gates
and a redo round on a local Notion server; the printed figures must add up and every preview must
come back, byte for byte, from the page's blocks read through the unmodified notion-client."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import httpx
import notion_client
import pytest

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^(?P<gate>assets|videos|audio|final|total)\s+(?P<round>\d+)\s+(?P<files>\d+)\s+(?P<requests>\d+)\s+"
    r"(?P<server>\d+)\s+(?P<per_file>[\d.]+)\s+(?P<budget>\d+)\s+(?P<make>[\d.]+)\s+(?P<notion>[\d.]+)\s+"
    r"(?P<largest>[\d,]+) KiB\s+(?P<size>[\d,]+) KiB$"
)


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_previews", REPO / "scripts" / "bench_previews.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' postponed annotations through it
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
TINY = bench.BenchOptions(scenes=2, width=320, height=180, clip_s=1.0, words_per_scene=4, redo_gate="videos",
                          redo=[1, 2], paced=False)  # fmt: skip


def _rows(output: str) -> list[dict[str, str]]:
    return [m.groupdict() for line in output.splitlines() if (m := ROW.match(line))]


def _children(client: notion_client.Client, block_id: str) -> list[dict]:
    return client.blocks.children.list(block_id=block_id, page_size=100)["results"]


def test_tiny_run_prints_consistent_figures_and_every_preview_downloads(notion_server, tmp_path: Path, capsys) -> None:
    result = bench.run_bench(TINY, notion_server, tmp_path)
    assert bench.print_figures(result)
    output = capsys.readouterr().out

    rows = _rows(output)
    gates, total = rows[:-1], rows[-1]
    assert [(r["gate"], int(r["round"])) for r in gates] == [
        ("assets", 1), ("videos", 1), ("videos", 2), ("audio", 1), ("final", 1)]  # fmt: skip
    assert total["gate"] == "total" and int(total["round"]) == len(gates)
    for row in gates:
        files, requests = int(row["files"]), int(row["requests"])
        assert files == 2  # 2 scenes, the redo of both, or the final video and its thumbnail
        assert requests == int(row["server"]), row  # the report's count is what the server answered
        assert int(row["budget"]) == 3 * files + 1
        assert requests <= 3 * files + 1, row
        assert float(row["per_file"]) == pytest.approx((requests - 1) / files, abs=0.005)
        assert 0 < int(row["largest"].replace(",", "")) <= 5 * 1024
    for column in ("files", "requests", "server", "budget"):
        assert int(total[column]) == sum(int(r[column]) for r in gates), column
    once = sum(int(r["requests"]) for r in gates if r["round"] == "1")
    assert f"four gates once: {once} Notion requests (8 files, 4 appends)" in output
    assert "FAIL" not in output and output.count("PASS") == 5

    # Read the page back as any client of the local server would, and fetch every preview's file.
    client = notion_client.Client(auth=notion_server.token, base_url=notion_server.base_url)
    try:
        toggles = _children(client, result.page_id)
        headings = ["".join(t["plain_text"] for t in b["heading_2"]["rich_text"]) for b in toggles]
        assert headings == ["Images — round 1", "Clips — round 1", "Clips — round 2", "Narration — round 1",
                            "Final video — round 1"]  # fmt: skip
        folders = ["assets-1", "videos-1", "videos-2", "audio-1", "final-1"]
        for toggle, folder in zip(toggles, folders, strict=True):
            assert toggle["heading_2"]["is_toggleable"] and toggle["has_children"]
            blocks = _children(client, toggle["id"])
            media = [b for b in blocks if b["type"] in ("image", "video", "audio")]
            captions = ["".join(t["plain_text"] for t in b["paragraph"]["rich_text"]) for b in blocks if b["type"] == "paragraph"]
            if folder != "final-1":
                assert [c.split(" — ")[0] for c in captions] == ["Scene 1", "Scene 2"]
            made = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "previews" / folder).iterdir())
            fetched = []
            for block in media:
                url = block[block["type"]]["file"]["url"]
                response = httpx.get(url)
                assert response.status_code == 200, url
                fetched.append(hashlib.sha256(response.content).hexdigest())
            assert sorted(fetched) == made and len(made) == 2, folder
    finally:
        client.close()


def _round(**changes: object) -> object:
    figures = dict(gate="assets", round=1, files=6, uploaded=6, report_requests=13, server_requests=13, budget=19,
                   total_s=1.0, notion_s=0.5, largest_bytes=1000, preview_bytes=6000)  # fmt: skip
    return bench.RoundFigures(**{**figures, **changes})


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"report_requests": 20, "server_requests": 20}, "FAIL budget"),
        ({"server_requests": 14}, "FAIL counts agree"),
        ({"largest_bytes": 5 * 1024 * 1024 + 1}, "FAIL size"),
        ({"uploaded": 5, "problems": ["Scene 3 (image): the file is missing on disk"]}, "FAIL uploaded"),
    ],
)
def test_a_missed_target_is_printed_as_a_failure(changes: dict, failed: str, capsys) -> None:
    digests = [f"{n:064x}" for n in range(6)]
    downloads = [bench.Download(kind="image", url=f"http://127.0.0.1/files/{d}", sha256=d, size=1000) for d in digests]
    met = bench.BenchResult(page_id="p", rounds=[_round()], downloads=downloads, previews=digests, film_s=40.0,
                            media_make_s=1.0, paced=True)  # fmt: skip
    assert bench.print_figures(met)
    assert "FAIL" not in capsys.readouterr().out

    missed = met.model_copy(update={"rounds": [_round(**changes)]})
    assert not bench.print_figures(missed)
    assert failed in capsys.readouterr().out


def test_a_preview_missing_from_the_page_fails_the_download_check(capsys) -> None:
    digests = [f"{n:064x}" for n in range(6)]
    downloads = [bench.Download(kind="image", url="u", sha256=d, size=1) for d in digests[:5]]
    result = bench.BenchResult(page_id="p", rounds=[_round()], downloads=downloads, previews=digests, film_s=40.0,
                               media_make_s=1.0, paced=True)  # fmt: skip
    assert not bench.print_figures(result)
    assert "FAIL downloadable: 5/6 previews" in capsys.readouterr().out


def test_a_redo_of_a_scene_the_video_lacks_is_refused_before_any_work(capsys) -> None:
    assert bench.main(["--scenes", "2", "--redo", "3"]) == 2
    assert "names scenes 1..2" in capsys.readouterr().err
