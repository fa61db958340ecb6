"""Review previews on the Notion page: what a reviewer looks at in Notion at each gate.

At a gate the reviewer works in Notion, often far from the worker's disk, so the gate's output is
shrunk to previews that fit a free workspace (5 MiB a file): JPEG stills about 1280 px wide, short
low-bitrate MP4s of clips, the narration as a small m4a, the final video at 480p. They are uploaded
through the one Notion gateway (its rate limit and retries) and attached to the page body in one
append per gate and round:

    ▸ ## Images — round 2              a toggleable heading; its children are the round's previews
        Scene 2 — <prompt>             numbered as the reviewer writes them in `redo:` (1 = first)
        [image]
        ⚠ Preview missing — Scene 4 (image): <why>

Every round is such a toggle, so earlier rounds stay folded on the page and a redo round, which
only carries the redone scenes, shows their new previews next to the old ones without touching them.

A preview problem (file missing, larger than the workspace allows, upload expired, page deleted,
Notion rate limiting past the gateway's retries) never raises: the gate must open regardless. The
page gets a note saying which preview is missing and why (when the page still takes blocks) and the
`PreviewReport` lists the problems and the Notion requests spent.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from vidgen.errors import VidgenError
from vidgen.media.ffmpeg import FFmpegError, probe, run_ffmpeg
from vidgen.notion.errors import NotionError, NotionInvalidEntry
from vidgen.notion.gateway import NotionGateway

log = logging.getLogger(__name__)

PreviewKind = Literal["image", "video", "audio"]
WORKSPACE_MAX_BYTES = 5 * 1024 * 1024  # a free Notion workspace's limit per file
STILL_WIDTH = 1280
CLIP_HEIGHT = 360
FINAL_HEIGHT = 480
CLIP_MAX_S = 10.0  # a clip preview shows the clip's first seconds
AUDIO_KBPS = 48  # mono AAC: narration stays clear
MIN_VIDEO_KBPS = 150  # below this 480p turns to mush: a long video's preview shows its beginning instead
GATE_TITLES = {"assets": "Images", "videos": "Clips", "audio": "Narration", "final": "Final video"}
MAX_TEXT = 2000  # Notion's limit for one rich text object's content
_CONTENT_TYPES = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mp4"}
_SUFFIXES = {"image": ".jpg", "video": ".mp4", "audio": ".m4a"}
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)


class PreviewItem(BaseModel):
    """One thing the reviewer should see: a scene's image/clip/narration, or a whole-video item
    (scene_number None: the narration track, the final video, its thumbnail)."""

    scene_number: int | None = Field(default=None, ge=1)  # 1-based, as the reviewer writes it in `redo:`
    kind: PreviewKind
    path: Path  # the original asset; its preview is made from it
    caption: str = ""  # the scene's prompt or narration text, shown beside the preview


class PreviewProblem(BaseModel):
    label: str  # "Scene 3 (image)"
    path: Path
    reason: str


class PreviewReport(BaseModel):
    page_id: str
    gate: str
    round: int
    heading: str
    attached: list[str] = Field(default_factory=list)  # labels of the previews on the page
    problems: list[PreviewProblem] = Field(default_factory=list)
    notion_requests: int = 0  # requests this gate's previews cost, retries included
    files_uploaded: int = 0
    page_written: bool = False  # False when the page took no block at all (deleted, rate limited)


# --- making previews ---------------------------------------------------------------------------------
def make_still(source: Path, out: Path, *, width: int = STILL_WIDTH) -> Path:
    """A JPEG of an image (or a video's first frame), at most `width` px wide."""
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(["-i", str(source), "-frames:v", "1", "-vf", f"scale='min({width},iw)':-2", "-q:v", "4", str(out)],
               what=f"still preview of {source.name}")  # fmt: skip
    return out


def make_audio_preview(source: Path, out: Path, *, kbps: int = AUDIO_KBPS) -> Path:
    """The sound of a file as a small mono AAC (.m4a)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(["-i", str(source), "-vn", "-ac", "1", "-c:a", "aac", "-b:a", f"{kbps}k", str(out)],
               what=f"audio preview of {source.name}")  # fmt: skip
    return out


def video_kbps(duration_s: float, max_bytes: int, *, ceiling: int) -> int:
    """A video bitrate that keeps `duration_s` of preview (with its AAC audio) under `max_bytes`, 15 %
    kept for the container; at most `ceiling`, and never under MIN_VIDEO_KBPS (see `preview_seconds`)."""
    budget = max_bytes * 8 * 0.85 / max(duration_s, 0.1) / 1000 - AUDIO_KBPS
    return int(max(MIN_VIDEO_KBPS, min(ceiling, budget)))


def preview_seconds(duration_s: float, max_bytes: int) -> float:
    """How much of a video its preview can show within `max_bytes` at MIN_VIDEO_KBPS: all of it for a
    short video, its beginning for a long one (5 MiB holds about three minutes at 480p)."""
    return min(duration_s, max_bytes * 8 * 0.85 / (MIN_VIDEO_KBPS + AUDIO_KBPS) / 1000)


def make_video_preview(source: Path, out: Path, *, height: int, max_s: float | None, max_bytes: int) -> Path:
    """An H.264/AAC MP4 at `height` px of the first `max_s` seconds (all when None), as much as fits `max_bytes`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    duration = probe(source).duration_s
    shown = preview_seconds(min(duration, max_s) if max_s else duration, max_bytes)
    kbps = video_kbps(shown, max_bytes, ceiling=1200 if height >= FINAL_HEIGHT else 600)
    run_ffmpeg([
        "-i", str(source), "-t", f"{shown:.2f}", "-vf", f"scale=-2:'min({height},ih)'", "-c:v", "libx264",
        "-preset", "veryfast", "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "1", "-movflags", "+faststart", str(out),
    ], what=f"video preview of {source.name}")  # fmt: skip
    return out


def make_preview(item: PreviewItem, gate: str, out_dir: Path, *, max_bytes: int = WORKSPACE_MAX_BYTES) -> Path:
    """The preview file for one item: the final video at 480p, clips short, stills as JPEG, sound as m4a."""
    if not item.path.is_file():
        raise FileNotFoundError(f"{item.path} is not on disk")
    name = f"{gate}-{_slug(item)}{_SUFFIXES[item.kind]}"
    out = out_dir / name
    if item.kind == "image":
        return make_still(item.path, out)
    if item.kind == "audio":
        return make_audio_preview(item.path, out)
    if gate == "final":
        return make_video_preview(item.path, out, height=FINAL_HEIGHT, max_s=None, max_bytes=max_bytes)
    return make_video_preview(item.path, out, height=CLIP_HEIGHT, max_s=CLIP_MAX_S, max_bytes=max_bytes)


def _slug(item: PreviewItem) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", item.path.stem.lower()).strip("-") or "file"
    return f"scene-{item.scene_number:02d}-{stem}" if item.scene_number else stem


# --- blocks ------------------------------------------------------------------------------------------
def label_of(item: PreviewItem) -> str:
    return f"Scene {item.scene_number} ({item.kind})" if item.scene_number else f"{item.path.name} ({item.kind})"


def heading_text(gate: str, round_number: int) -> str:
    return f"{GATE_TITLES.get(gate, gate.title())} — round {round_number}"


def _text(content: str, *, bold: bool = False) -> dict[str, Any]:
    return {"type": "text", "text": {"content": content[:MAX_TEXT]}, "annotations": {"bold": bold}}


def _caption_block(item: PreviewItem) -> dict[str, Any]:
    parts = [_text(f"Scene {item.scene_number}", bold=True)] if item.scene_number else []
    if item.caption.strip():
        parts.append(_text((" — " if parts else "") + item.caption.strip()))
    return {"type": "paragraph", "paragraph": {"rich_text": parts or [_text(item.path.name)]}}


def _media_block(kind: PreviewKind, upload_id: str) -> dict[str, Any]:
    return {"type": kind, kind: {"type": "file_upload", "file_upload": {"id": upload_id}}}


def note_block(label: str, reason: str) -> dict[str, Any]:
    return {"type": "callout", "callout": {"rich_text": [_text(f"Preview missing — {label}: {reason}")],
                                           "icon": {"type": "emoji", "emoji": "⚠️"}}}  # fmt: skip


def _round_block(heading: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "heading_2", "heading_2": {"rich_text": [_text(heading)], "is_toggleable": True,
                                               "children": children}}  # fmt: skip


# --- publishing ----------------------------------------------------------------------------------------
def publish_gate_previews(
    gateway: NotionGateway,
    page_id: str,
    gate: str,
    round: int,  # noqa: A002 - the word the reviewer sees ("round 2")
    items: list[PreviewItem],
    *,
    preview_dir: Path | None = None,
    max_file_bytes: int = WORKSPACE_MAX_BYTES,
) -> PreviewReport:
    """Make, upload and attach one gate round's previews on the page; never raises for a preview problem.

    Costs: per file one create + one send (files over 20 MB: parts + complete), then one append for
    the whole round. `preview_dir` keeps the preview files (a temporary folder when None).
    """
    heading = heading_text(gate, round)
    report = PreviewReport(page_id=page_id, gate=gate, round=round, heading=heading)
    before = gateway.requests_sent
    with tempfile.TemporaryDirectory(prefix="vidgen-previews-") as scratch:
        out_dir = preview_dir or Path(scratch)
        upload_of: dict[int, str] = {}  # item position -> file upload id
        notes: dict[int, tuple[str, str]] = {}  # item position -> (label, why its preview is missing)
        for position, item in enumerate(items):
            upload_id, reason = _upload_preview(gateway, item, gate, out_dir, max_file_bytes)
            if upload_id:
                upload_of[position] = upload_id
            else:
                notes[position] = (label_of(item), reason)
        report.files_uploaded = len(upload_of)
        _attach(gateway, report, items, upload_of, notes)
    report.notion_requests = gateway.requests_sent - before
    for problem in report.problems:
        log.warning("preview missing on page %s (%s): %s: %s", page_id, heading, problem.label, problem.reason)
    return report


def _upload_preview(gateway: NotionGateway, item: PreviewItem, gate: str, out_dir: Path,
                    max_file_bytes: int) -> tuple[str | None, str]:  # fmt: skip
    """(upload id, "") or (None, why not)."""
    try:
        preview = make_preview(item, gate, out_dir, max_bytes=max_file_bytes)
        return gateway.upload_file(preview, _CONTENT_TYPES[item.kind]), ""
    except FileNotFoundError as e:
        return None, f"the file is missing on disk ({e})"
    except FFmpegError as e:
        return None, f"the preview could not be made ({str(e).splitlines()[0]})"
    except NotionError as e:
        return None, f"Notion did not take the upload ({e})"
    except (OSError, VidgenError) as e:
        return None, f"{type(e).__name__}: {e}"


def _attach(gateway: NotionGateway, report: PreviewReport, items: list[PreviewItem], upload_of: dict[int, str],
            notes: dict[int, tuple[str, str]]) -> None:  # fmt: skip
    """One append with the round's toggle; an upload Notion refuses to attach (expired, say) is named in
    its 400, so it becomes a note and the append is made again without it (at most once per upload)."""
    for _ in range(len(upload_of) + 1):
        children: list[dict[str, Any]] = []
        for position, item in enumerate(items):
            children.append(_caption_block(item))
            if position in notes:
                children.append(note_block(*notes[position]))
            else:
                children.append(_media_block(item.kind, upload_of[position]))
        try:
            gateway.append_blocks(report.page_id, [_round_block(report.heading, children)])
        except NotionInvalidEntry as e:
            refused = _refused_uploads(str(e), items, upload_of, notes)
            if refused:
                for position in refused:
                    notes[position] = (label_of(items[position]), f"Notion refused to attach it ({e})")
                continue
            _give_up(gateway, report, items, notes, f"Notion refused the previews ({e})")
            return
        except NotionError as e:
            _give_up(gateway, report, items, notes, f"the page took no previews ({e})")
            return
        report.page_written = True
        report.attached = [label_of(item) for p, item in enumerate(items) if p not in notes]
        report.problems = [PreviewProblem(label=notes[p][0], path=items[p].path, reason=notes[p][1]) for p in sorted(notes)]
        return


def _refused_uploads(message: str, items: list[PreviewItem], upload_of: dict[int, str],
                     notes: dict[int, tuple[str, str]]) -> list[int]:  # fmt: skip
    named = {m.replace("-", "").lower() for m in _UUID.findall(message)}
    return [p for p in range(len(items)) if p not in notes and upload_of[p].replace("-", "").lower() in named]


def _give_up(gateway: NotionGateway, report: PreviewReport, items: list[PreviewItem],
             notes: dict[int, tuple[str, str]], reason: str) -> None:  # fmt: skip
    """The round's toggle could not be written: every preview is a problem; try one note on the page."""
    report.problems = [PreviewProblem(label=label_of(item), path=item.path, reason=notes[p][1] if p in notes else reason)
                       for p, item in enumerate(items)]  # fmt: skip
    try:
        gateway.append_blocks(report.page_id, [_round_block(report.heading, [note_block("all previews", reason)])])
        report.page_written = True
    except NotionError as e:
        log.warning("could not leave a preview note on page %s: %s", report.page_id, e)


# --- reading a page back -----------------------------------------------------------------------------
def describe_page_blocks(gateway: NotionGateway, page_id: str) -> list[str]:
    """The page body as text lines for a terminal: headings, scene lines, media with their URLs, notes;
    children of toggles indented. Reading is best effort: a failure is one line saying so."""
    try:
        return _describe(gateway, page_id, 0)
    except NotionError as e:
        return [f"(the page's blocks could not be read: {e})"]


def _describe(gateway: NotionGateway, parent_id: str, depth: int) -> list[str]:
    lines: list[str] = []
    indent = "    " * depth
    for block in gateway.list_blocks(parent_id):
        kind = block.get("type", "")
        content = block.get(kind) or {}
        text = "".join(r.get("plain_text") or r.get("text", {}).get("content", "") for r in content.get("rich_text", []))
        if kind.startswith("heading_"):
            marker = "▸ " if content.get("is_toggleable") else ""
            lines.append(f"{indent}{marker}{'#' * int(kind[-1])} {text}")
        elif kind == "toggle":
            lines.append(f"{indent}▸ {text}")
        elif kind == "callout":
            lines.append(f"{indent}⚠ {text}")
        elif kind in ("image", "video", "audio", "file", "pdf"):
            source = content.get(content.get("type", ""), {}) or {}
            lines.append(f"{indent}[{kind}] {source.get('url', '(no url)')}")
        else:
            lines.append(f"{indent}{text}")
        if block.get("has_children"):
            lines += _describe(gateway, block["id"], depth + 1)
    return lines
