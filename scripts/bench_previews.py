"""What review previews cost on the Notion page: Notion requests, seconds and bytes per gate.

Makes one video's real media with the local providers: a local script, 1920x1080 PNG stills, 5 s
1080p clips animated from them, espeak narration WAVs, ambience, and the final ~40 s 1080p video
with its thumbnail (vidgen.media.assembly). Then, against an in-process local Notion server with
one card, it publishes the four gates' previews exactly as the flow does (`publish_gate_previews`
for assets, videos, audio, final) plus one redo round of two scenes, paced like the product
(3 requests/s) unless --unpaced.

Printed per gate round: files, Notion requests as the report counts them AND as the server answered
them (an httpx response hook on the gateway's client), requests per file beside the budget
(issue 11: at most 3 per file + 1 append), seconds making previews vs seconds in Notion calls
(pacing and retries included), the largest preview (must fit 5 MiB); then totals, what previews add
to one video's Notion requests (issue 8 budgets ~20 for a video that passes its four gates once),
and whether every preview can be downloaded back from the page's blocks.

    uv run python scripts/bench_previews.py [--scenes 6] [--redo-gate videos --redo 2,5] [--unpaced]

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field, ValidationError, model_validator

from vidgen.channels import load_channels
from vidgen.media.assembly import AssemblyRequest, SceneMedia, assemble
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import NOTION_REQUESTS_PER_SECOND, TokenBucket
from vidgen.notion.server import LocalNotionServer
from vidgen.previews import WORKSPACE_MAX_BYTES, PreviewItem, PreviewReport, publish_gate_previews
from vidgen.providers.base import ClipRequest, ImageRequest, NarrationRequest, ScriptRequest, SoundRequest, VoiceSpec
from vidgen.providers.local.clips import LocalClipAnimator
from vidgen.providers.local.images import LocalImageGenerator
from vidgen.providers.local.narration import LocalNarrator
from vidgen.providers.local.script import LocalScriptWriter
from vidgen.providers.local.sound import LocalSoundDesigner

REPO = Path(__file__).resolve().parents[1]
GATES = ("assets", "videos", "audio", "final")
SCENE_GATES = ("assets", "videos", "audio")  # gates whose previews are per scene, so a redo names scenes
REQUESTS_PER_FILE = 3  # issue 11: a gate's previews cost at most 3 requests per file plus one append
APPENDS_PER_ROUND = 1
VIDEO_REQUEST_GOAL = 20  # issue 8: Notion requests for a video that passes its four gates once
MEDIA_KINDS = ("image", "video", "audio", "file", "pdf")


class BenchOptions(BaseModel):
    scenes: int = Field(default=6, ge=1)
    width: int = Field(default=1920, ge=64)
    height: int = Field(default=1080, ge=64)
    clip_s: float = Field(default=5.0, ge=1, le=20)
    words_per_scene: int = Field(default=16, ge=1)  # ~6.5 s of narration a scene: a ~40 s film for 6 scenes
    redo_gate: str = "videos"
    redo: list[int] = Field(default_factory=lambda: [2, 5])  # scene numbers, 1 = first
    paced: bool = True  # the product's 3 requests/s; unpaced shows the wire cost alone

    @model_validator(mode="after")
    def _redo_names_scenes(self) -> BenchOptions:
        if self.redo_gate not in SCENE_GATES:
            raise ValueError(f"the redo gate must be one of {', '.join(SCENE_GATES)}")
        if any(n < 1 or n > self.scenes for n in self.redo):
            raise ValueError(f"the redo round names scenes 1..{self.scenes}")
        return self


class GateMedia(BaseModel):
    """What the flow shows at each gate, made from real media: the items `publish_gate_previews` takes."""

    items: dict[str, list[PreviewItem]]
    film_s: float
    make_s: float  # seconds the media took to make (setup, not part of the figures)


class RoundFigures(BaseModel):
    gate: str
    round: int
    files: int  # items shown this round
    uploaded: int
    report_requests: int  # PreviewReport.notion_requests
    server_requests: int  # responses the local server sent back for this round
    budget: int  # REQUESTS_PER_FILE per file + one append
    total_s: float
    notion_s: float  # inside the gateway's upload/append calls: pacing, retries and the transfer
    largest_bytes: int
    preview_bytes: int
    problems: list[str] = Field(default_factory=list)

    @property
    def make_s(self) -> float:
        return max(0.0, self.total_s - self.notion_s)

    @property
    def requests_per_file(self) -> float:
        """Requests per file once the round's one append is set aside (the goal's "3 per file + 1")."""
        return (self.report_requests - APPENDS_PER_ROUND) / max(1, self.files)


class Download(BaseModel):
    kind: str
    url: str
    sha256: str
    size: int


class BenchResult(BaseModel):
    page_id: str
    rounds: list[RoundFigures]
    downloads: list[Download]
    previews: list[str]  # sha256 of every preview file made (a redo's preview may equal its first round's)
    film_s: float
    media_make_s: float
    paced: bool


class TimedGateway(NotionGateway):
    """The product's gateway, keeping the seconds spent inside its upload and append calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notion_s = 0.0

    def upload_file(self, path: Path, content_type: str) -> str:
        start = time.perf_counter()
        try:
            return super().upload_file(path, content_type)
        finally:
            self.notion_s += time.perf_counter() - start

    def append_blocks(self, parent_id: str, blocks: list[dict[str, Any]], after: str | None = None) -> list[dict[str, Any]]:
        start = time.perf_counter()
        try:
            return super().append_blocks(parent_id, blocks, after)
        finally:
            self.notion_s += time.perf_counter() - start


class ServerAnswers:
    """Responses that came back from the server, by HTTP status (an httpx response hook): what the
    server received and answered, counted outside the gateway's own counter."""

    def __init__(self) -> None:
        self.by_status: Counter[int] = Counter()

    def __call__(self, response: httpx.Response) -> None:
        self.by_status[response.status_code] += 1

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


# --- media ---------------------------------------------------------------------------------------
def make_gate_media(options: BenchOptions, root: Path) -> GateMedia:
    """One video's media, made the way the local providers make it for the demo, and the gate items
    the flow would show for it (captions as in flows/produce_video.py)."""
    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    size = (options.width, options.height)
    script = LocalScriptWriter().write(ScriptRequest(
        title="Salmon run", topic="The sockeye salmon run in Alaska", channel_name="Wild Frontiers",
        style_preamble="Photoreal nature documentary", scenes=options.scenes, words_per_scene=options.words_per_scene,
    )).script  # fmt: skip
    images_maker, clips_maker = LocalImageGenerator(size=size), LocalClipAnimator(size=size)
    narrator, designer = LocalNarrator(), LocalSoundDesigner()
    images, clips, scene_media = [], [], []
    for scene in script.scenes:
        n = scene.index + 1
        image = images_maker.generate(ImageRequest(prompt=scene.image_prompt, seed=n, out_path=root / f"scene-{n:02d}.png"))
        clip = clips_maker.animate(ClipRequest(image_path=image.path, motion_prompt=scene.motion_prompt,
                                               duration_s=options.clip_s, seed=n, out_path=root / f"scene-{n:02d}.mp4"))  # fmt: skip
        voice = narrator.narrate(NarrationRequest(text=scene.narration, voice=VoiceSpec(), out_path=root / f"scene-{n:02d}.wav"))
        sound = designer.design(SoundRequest(cue=scene.sound_cue, duration_s=min(30.0, voice.duration_s + 1.0), seed=n,
                                             out_path=root / f"sound-{n:02d}.wav"))  # fmt: skip
        images.append(image.path)
        clips.append(clip.path)
        scene_media.append(SceneMedia(index=scene.index, clip=clip.path, narration=voice.path, words=voice.words,
                                      narration_duration_s=voice.duration_s, sound=sound.path, title=f"Scene {n}"))  # fmt: skip
    film = assemble(AssemblyRequest(scenes=scene_media, out_dir=root / "final", work_dir=root / "assembly",
                                    title=script.title, width=options.width, height=options.height))  # fmt: skip
    scenes = script.scenes
    chapters = "; ".join(f"{c.start_s:.0f} s {c.title}" for c in film.chapters)
    items = {
        "assets": [PreviewItem(scene_number=s.index + 1, kind="image", path=p, caption=s.image_prompt) for s, p in zip(scenes, images)],
        "videos": [PreviewItem(scene_number=s.index + 1, kind="video", path=p, caption=s.motion_prompt) for s, p in zip(scenes, clips)],
        "audio": [PreviewItem(scene_number=s.index + 1, kind="audio", path=m.narration, caption=s.narration)
                  for s, m in zip(scenes, scene_media)],
        "final": [PreviewItem(kind="video", path=film.video, caption=f"{film.duration_s:.0f} s. Chapters: {chapters}"),
                  PreviewItem(kind="image", path=film.thumbnail, caption="Thumbnail")],
    }  # fmt: skip
    return GateMedia(items=items, film_s=film.duration_s, make_s=time.perf_counter() - start)


# --- publishing ----------------------------------------------------------------------------------
def publish_round(gateway: TimedGateway, answers: ServerAnswers, page_id: str, gate: str, round_number: int,
                  items: list[PreviewItem], preview_dir: Path) -> tuple[RoundFigures, PreviewReport]:  # fmt: skip
    """One gate round through the product's `publish_gate_previews`, measured."""
    answered_before, notion_before = answers.total, gateway.notion_s
    start = time.perf_counter()
    report = publish_gate_previews(gateway, page_id, gate, round_number, items, preview_dir=preview_dir)
    total_s = time.perf_counter() - start
    sizes = [p.stat().st_size for p in preview_dir.iterdir() if p.is_file()]
    figures = RoundFigures(
        gate=gate, round=round_number, files=len(items), uploaded=report.files_uploaded,
        report_requests=report.notion_requests, server_requests=answers.total - answered_before,
        budget=REQUESTS_PER_FILE * len(items) + APPENDS_PER_ROUND, total_s=total_s,
        notion_s=gateway.notion_s - notion_before, largest_bytes=max(sizes, default=0), preview_bytes=sum(sizes),
        problems=[f"{p.label}: {p.reason}" for p in report.problems],
    )  # fmt: skip
    return figures, report


def publish_all_gates(gateway: TimedGateway, answers: ServerAnswers, page_id: str, media: GateMedia,
                      options: BenchOptions, preview_root: Path) -> list[RoundFigures]:  # fmt: skip
    """Every gate's first round in the pipeline's order, the redo round right after its gate's first."""
    rounds: list[RoundFigures] = []
    for gate in GATES:
        items = media.items[gate]
        figures, _ = publish_round(gateway, answers, page_id, gate, 1, items, preview_root / f"{gate}-1")
        rounds.append(figures)
        if gate == options.redo_gate and options.redo:
            redone = [item for item in items if item.scene_number in set(options.redo)]
            figures, _ = publish_round(gateway, answers, page_id, gate, 2, redone, preview_root / f"{gate}-2")
            rounds.append(figures)
    return rounds


def page_downloads(gateway: NotionGateway, http: httpx.Client, parent_id: str) -> list[Download]:
    """Every media block under the page (toggles included), fetched from its file URL as a reviewer's
    client would: no Notion token, the URL carries its own secret."""
    found: list[Download] = []
    for block in gateway.list_blocks(parent_id):
        kind = block.get("type", "")
        if kind in MEDIA_KINDS:
            content = block[kind]
            url = content[content["type"]]["url"]
            response = http.get(url)
            response.raise_for_status()
            found.append(Download(kind=kind, url=url, sha256=hashlib.sha256(response.content).hexdigest(),
                                  size=len(response.content)))  # fmt: skip
        if block.get("has_children"):
            found += page_downloads(gateway, http, block["id"])
    return found


def preview_digests(preview_root: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in preview_root.rglob("*") if p.is_file())


def run_bench(options: BenchOptions, server: LocalNotionServer, root: Path) -> BenchResult:
    """Make the media, create a card on `server`, publish every gate round and read the previews back."""
    media = make_gate_media(options, root / "media")
    answers = ServerAnswers()
    http = httpx.Client(event_hooks={"response": [answers]})
    limiter = TokenBucket(NOTION_REQUESTS_PER_SECOND) if options.paced else TokenBucket.unlimited()
    gateway = TimedGateway(server.token, base_url=server.base_url, client=http, limiter=limiter)
    try:
        gateway.create_database(parent_page_id=None, channels=load_channels(REPO / "channels"))
        page = gateway.create_entry(title="Salmon run", channel="Wild Frontiers", topic="The sockeye salmon run")
        rounds = publish_all_gates(gateway, answers, page.page_id, media, options, root / "previews")
        with httpx.Client() as downloader:
            downloads = page_downloads(gateway, downloader, page.page_id)
    finally:
        gateway.close()
        http.close()
    return BenchResult(page_id=page.page_id, rounds=rounds, downloads=downloads,
                       previews=preview_digests(root / "previews"), film_s=media.film_s,
                       media_make_s=media.make_s, paced=options.paced)  # fmt: skip


# --- printing ------------------------------------------------------------------------------------
def _kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB"


def print_figures(result: BenchResult) -> bool:
    """The table and the verdicts; True when every target is met."""
    pacing = f"paced at {NOTION_REQUESTS_PER_SECOND:g} requests/s" if result.paced else "unpaced"
    print(f"page {result.page_id}; media made in {result.media_make_s:.1f} s; film {result.film_s:.1f} s; Notion {pacing}")
    print()
    header = (f"{'gate':<8}{'round':>6}{'files':>6}{'requests':>10}{'server':>8}{'req/file':>10}{'budget':>8}"
              f"{'make s':>8}{'notion s':>10}{'largest':>12}{'total size':>12}")  # fmt: skip
    print(header)
    for r in result.rounds:
        print(f"{r.gate:<8}{r.round:>6}{r.files:>6}{r.report_requests:>10}{r.server_requests:>8}"
              f"{r.requests_per_file:>10.2f}{r.budget:>8}{r.make_s:>8.2f}{r.notion_s:>10.2f}"
              f"{_kib(r.largest_bytes):>12}{_kib(r.preview_bytes):>12}")  # fmt: skip
    files = sum(r.files for r in result.rounds)
    requests = sum(r.report_requests for r in result.rounds)
    served = sum(r.server_requests for r in result.rounds)
    budget = sum(r.budget for r in result.rounds)
    make_s = sum(r.make_s for r in result.rounds)
    notion_s = sum(r.notion_s for r in result.rounds)
    largest = max((r.largest_bytes for r in result.rounds), default=0)
    size = sum(r.preview_bytes for r in result.rounds)
    per_file = (requests - APPENDS_PER_ROUND * len(result.rounds)) / max(1, files)
    print(f"{'total':<8}{len(result.rounds):>6}{files:>6}{requests:>10}{served:>8}{per_file:>10.2f}{budget:>8}"
          f"{make_s:>8.2f}{notion_s:>10.2f}{_kib(largest):>12}{_kib(size):>12}")  # fmt: skip
    first_rounds = [r for r in result.rounds if r.round == 1]
    once = sum(r.report_requests for r in first_rounds)
    print()
    print(f"previews of one video passing its four gates once: {once} Notion requests "
          f"({sum(r.files for r in first_rounds)} files, {len(first_rounds)} appends); "
          f"issue 8's goal for the whole video: <= {VIDEO_REQUEST_GOAL}")  # fmt: skip
    for r in result.rounds:
        for problem in r.problems:
            print(f"problem: {r.gate} round {r.round}: {problem}")

    made = Counter(result.previews)
    readable = sum((made & Counter(d.sha256 for d in result.downloads)).values())
    checks = {
        f"budget: every round <= {REQUESTS_PER_FILE} requests per file + {APPENDS_PER_ROUND} append":
            all(r.report_requests <= r.budget for r in result.rounds),
        "counts agree: the report's requests = the requests the server answered":
            all(r.report_requests == r.server_requests for r in result.rounds),
        f"size: every preview fits {WORKSPACE_MAX_BYTES / 1024 / 1024:g} MiB (largest {_kib(largest)})":
            largest <= WORKSPACE_MAX_BYTES,
        f"uploaded: {sum(r.uploaded for r in result.rounds)}/{files} previews, no problem":
            all(r.uploaded == r.files and not r.problems for r in result.rounds),
        f"downloadable: {readable}/{len(result.previews)} previews fetched back, byte for byte, from the page's "
        f"{len(result.downloads)} media blocks": readable == len(result.previews) == len(result.downloads) == files,
    }  # fmt: skip
    print()
    for claim, met in checks.items():
        print(f"{'PASS' if met else 'FAIL'} {claim}")
    return all(checks.values())


def _scene_numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = BenchOptions()
    parser.add_argument("--scenes", type=int, default=defaults.scenes)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--height", type=int, default=defaults.height)
    parser.add_argument("--clip-seconds", type=float, default=defaults.clip_s)
    parser.add_argument("--words-per-scene", type=int, default=defaults.words_per_scene)
    parser.add_argument("--redo-gate", choices=SCENE_GATES, default=defaults.redo_gate)
    parser.add_argument("--redo", type=_scene_numbers, default=defaults.redo, help="scenes of the redo round, e.g. 2,5")
    parser.add_argument("--unpaced", action="store_true", help="no 3 requests/s pacing: the wire cost alone")
    args = parser.parse_args(argv)
    try:
        options = BenchOptions(scenes=args.scenes, width=args.width, height=args.height, clip_s=args.clip_seconds,
                               words_per_scene=args.words_per_scene, redo_gate=args.redo_gate, redo=args.redo,
                               paced=not args.unpaced)  # fmt: skip
    except ValidationError as e:
        print(f"bench_previews: {e.errors()[0]['msg']}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-previews-") as tmp, \
            LocalNotionServer(Path(tmp) / "notion.sqlite") as server:  # fmt: skip
        result = run_bench(options, server, Path(tmp))
    return 0 if print_figures(result) else 1


if __name__ == "__main__":
    raise SystemExit(main())
