"""The production steps of one video, free of any orchestrator.

Each step builds its provider request, and returns the recorded result when the workspace manifest
already holds an intact file made from the same inputs; otherwise it calls the provider once, records
the file in the manifest, the cost in the ledger, and the call in `calls.jsonl` (the audit trail that
proves nothing paid for is made twice). Prefect tasks in `tasks/` are thin wrappers over these.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from vidgen.channels import Channel, load_channels
from vidgen.config import Paths
from vidgen.errors import InvalidInputError, NeedsReviewError
from vidgen.ledger import CostLedger
from vidgen.models import Chapter, Cost, Scene, Script, WordTiming
from vidgen.providers.base import (
    ClipRequest,
    ImageRequest,
    NarrationRequest,
    PublishRequest,
    PublishResult,
    ScriptRequest,
    SoundRequest,
    VideoMetadata,
    VoiceSpec,
)
from vidgen.providers.registry import ProviderSet, providers_for
from vidgen.providers.settings import ProviderSettings
from vidgen.workspace import Workspace, fingerprint

KLING_DURATIONS = (5.0, 10.0)
SCENE_PADDING_S = 0.95  # lead-in + tail around each scene's narration (see media.assembly)


class VideoBrief(BaseModel):
    """What a person typed into Notion, as the production needs it."""

    page_id: str
    channel_id: str
    title: str
    topic: str
    story_direction: str = ""


class NarrationTrack(BaseModel):
    index: int
    path: Path
    duration_s: float
    words: list[WordTiming]


class AssembledVideo(BaseModel):
    video: Path
    captions: Path
    thumbnail: Path
    duration_s: float
    chapters: list[Chapter]


class Production:
    """Everything a step needs for one video: its channel, folder, providers and the cost ledger.

    Opened once per flow run and closed at its end (`with Production.open(...) as production:`), so
    the providers' HTTP clients are made once and reused by every step of the video. A plain class,
    not a dataclass: Prefect walks dataclass task arguments looking for futures."""

    def __init__(self, brief: VideoBrief, channel: Channel, workspace: Workspace, providers: ProviderSet,
                 ledger: CostLedger, paths: Paths):
        self.brief = brief
        self.channel = channel
        self.workspace = workspace
        self.providers = providers
        self.ledger = ledger
        self.paths = paths

    @classmethod
    def open(
        cls,
        brief: VideoBrief,
        *,
        paths: Paths | None = None,
        settings: ProviderSettings | None = None,
        ledger: CostLedger | None = None,
    ) -> Production:
        paths = paths or Paths.from_env()
        channel = configured_channels(paths.channels).get(brief.channel_id)
        if channel is None:
            raise InvalidInputError(f"channel {brief.channel_id!r} is not configured in {paths.channels}")
        return cls(
            brief=brief,
            channel=channel,
            workspace=Workspace.for_entry(paths.workspaces, channel.id, brief.page_id).ensure(),
            providers=providers_for(channel, settings or ProviderSettings.from_env()),
            ledger=ledger or _ledger(paths.ledger_url),
            paths=paths,
        )

    def close(self) -> None:
        self.providers.close()

    def __enter__(self) -> Production:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- bookkeeping shared by every step -------------------------------------------------------
    def _audit(self, step: str, key: str, provider: str, cost: Cost) -> None:
        line = json.dumps(
            {
                "at": datetime.now(timezone.utc).isoformat(),
                "step": step,
                "key": key,
                "provider": provider,
                "usd": cost.usd,
            }
        )
        with _audit_lock, open(self.workspace.root / "calls.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def _paid(self, step: str, key: str, fp: str, provider: str, cost: Cost) -> None:
        self._audit(step, key, provider, cost)
        self.ledger.record(
            page_id=self.brief.page_id,
            channel_id=self.channel.id,
            step=step,
            item=key,
            provider=provider,
            units=cost.units,
            unit=cost.unit or step,
            usd=cost.usd,
            idempotency_key=f"{self.brief.page_id}:{key}:{fp}",
        )

    def _make(self, step: str, key: str, fp: str, provider: str, call, extra=None):
        """Call a provider once: budget check, the call, the manifest entry, the ledger line, the audit line."""
        self.check_budget()
        result = call()
        self.workspace.record(key, result.path, fp, provider=provider, cost=result.cost, extra=extra(result) if extra else None)
        self._paid(step, key, fp, provider, result.cost)
        return result

    def check_budget(self) -> None:
        """Refuse a new paid call once the video has spent its channel's budget (a person decides)."""
        spent = self.ledger.total_for(self.brief.page_id)
        limit = self.channel.budget.max_usd_per_video
        if spent >= limit:
            raise NeedsReviewError(
                f"the video has cost ${spent:.2f}, reaching the channel's budget of ${limit:.2f} "
                f"(budget.max_usd_per_video in {self.channel.id}'s YAML); raise it and re-queue to continue"
            )

    def calls(self) -> list[dict[str, Any]]:
        """Every provider call made for this video (from the audit trail)."""
        log = self.workspace.root / "calls.jsonl"
        if not log.is_file():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def total_cost(self) -> float:
        return self.ledger.total_for(self.brief.page_id)

    def _name(self, stem: str, index: int, revision: int, suffix: str) -> str:
        rev = f"_r{revision}" if revision else ""
        return f"{stem}_{index:02d}{rev}{suffix}"

    # --- the steps ------------------------------------------------------------------------------
    def write_script(self, revision: int = 0) -> Script:
        ch = self.channel
        request = ScriptRequest(
            title=self.brief.title,
            topic=self.brief.topic,
            story_direction=self.brief.story_direction,
            channel_name=ch.name,
            style_preamble=ch.style.preamble,
            language=ch.language,
            scenes=ch.script.scenes,
            words_per_scene=ch.script.words_per_scene,
            note_dir=self.workspace.root,
        )
        writer = self.providers.script
        fp = fingerprint(request, writer.name, revision)
        key = "script"
        out = self.workspace.root / "script.json"
        if entry := self.workspace.lookup(key, fp):
            return Script.model_validate_json(self.workspace.abspath(entry).read_text(encoding="utf-8"))
        self.check_budget()
        # Imported here, not at the top, only to keep this change inside write_script's body.
        from vidgen.script_repair import UnusableScriptError, write_checked_script

        try:
            # A model's answer that breaks our rules is renumbered or asked for once more, never
            # blamed on the brief: it ends as Error: API Failure with the answer attached.
            result = write_checked_script(
                writer.write, request, provider=writer.name,
                min_scenes=ch.script.min_scenes, max_scenes=ch.script.max_scenes,
            )
        except UnusableScriptError as exc:
            self._paid("script", "script/unusable", fingerprint(fp, exc.answer), writer.name, exc.cost)
            raise
        out.write_text(result.script.model_dump_json(indent=2), encoding="utf-8")
        self.workspace.record(key, out, fp, provider=writer.name, cost=result.cost)
        self._paid("script", key, fp, writer.name, result.cost)
        return result.script

    def make_image(self, scene: Scene, revision: int = 0) -> Path:
        gen = self.providers.images
        out = self.workspace.dir("assets") / self._name("scene", scene.index, revision, ".png")
        request = ImageRequest(
            prompt=scene.image_prompt,
            style_preamble=self.channel.style.preamble,
            palette=self.channel.style.palette,
            seed=scene.index + 1000 * revision,
            out_path=out,
        )
        key = f"image/{scene.index:02d}"
        fp = fingerprint(request.model_copy(update={"out_path": Path(out.name)}), gen.name, revision)
        if entry := self.workspace.lookup(key, fp):
            return self.workspace.abspath(entry)
        return self._make("images", key, fp, gen.name, lambda: gen.generate(request)).path

    def make_composite(self, scene: Scene, image: Path, revision: int = 0) -> Path:
        from vidgen.media.composite import compose

        out = self.workspace.dir("composites") / self._name("frame", scene.index, revision, ".png")
        key = f"composite/{scene.index:02d}"
        fp = fingerprint(_sha(image), self.channel.style.watermark, revision)
        if entry := self.workspace.lookup(key, fp):
            return self.workspace.abspath(entry)
        compose(image, out, watermark=self.channel.style.watermark)
        self.workspace.record(key, out, fp, provider="pillow")
        return out

    def clip_duration(self, scene: Scene) -> float:
        """Kling offers 5 or 10 s; pick the shortest that covers the narration we expect."""
        words = len(scene.narration.split())
        expected = words / self.channel.voice.words_per_minute * 60 + SCENE_PADDING_S
        return next((d for d in KLING_DURATIONS if d >= expected), KLING_DURATIONS[-1])

    def make_clip(self, scene: Scene, composite: Path, revision: int = 0) -> Path:
        anim = self.providers.clips
        out = self.workspace.dir("videos") / self._name("clip", scene.index, revision, ".mp4")
        request = ClipRequest(
            image_path=composite,
            motion_prompt=scene.motion_prompt,
            duration_s=self.clip_duration(scene),
            seed=scene.index + 1000 * revision,
            out_path=out,
        )
        key = f"clip/{scene.index:02d}"
        fp = fingerprint(_sha(composite), request.motion_prompt, request.duration_s, anim.name, revision)
        if entry := self.workspace.lookup(key, fp):
            return self.workspace.abspath(entry)
        return self._make("clips", key, fp, anim.name, lambda: anim.animate(request)).path

    def make_narration(self, scene: Scene, revision: int = 0) -> NarrationTrack:
        narrator = self.providers.narration
        v = self.channel.voice
        voice = VoiceSpec(
            local_voice=v.local_voice,
            words_per_minute=v.words_per_minute,
            elevenlabs_voice_id=v.elevenlabs_voice_id,
            elevenlabs_model=v.elevenlabs_model,
            language=self.channel.language,
        )
        out = self.workspace.dir("audio") / self._name("narration", scene.index, revision, ".wav")
        request = NarrationRequest(text=scene.narration, voice=voice, out_path=out)
        key = f"narration/{scene.index:02d}"
        fp = fingerprint(request.text, voice, narrator.name, revision)
        if entry := self.workspace.lookup(key, fp):
            return NarrationTrack(index=scene.index, path=self.workspace.abspath(entry), **entry.extra)
        result = self._make(
            "narration", key, fp, narrator.name, lambda: narrator.narrate(request),
            extra=lambda r: {"duration_s": r.duration_s, "words": [w.model_dump() for w in r.words]},
        )
        return NarrationTrack(index=scene.index, path=result.path, duration_s=result.duration_s, words=result.words)

    def make_sound(self, scene: Scene, duration_s: float, revision: int = 0) -> Path:
        designer = self.providers.sound
        out = self.workspace.dir("sfx") / self._name("sfx", scene.index, revision, ".wav")
        request = SoundRequest(
            cue=scene.sound_cue, duration_s=min(30.0, round(duration_s, 2)), seed=scene.index, out_path=out
        )
        key = f"sound/{scene.index:02d}"
        fp = fingerprint(request.cue, request.duration_s, designer.name, revision)
        if entry := self.workspace.lookup(key, fp):
            return self.workspace.abspath(entry)
        return self._make("sound", key, fp, designer.name, lambda: designer.design(request)).path

    def assemble(
        self,
        script: Script,
        clips: list[Path],
        narrations: list[NarrationTrack],
        sounds: list[Path],
    ) -> AssembledVideo:
        from vidgen.media.assembly import AssemblyRequest, SceneMedia, assemble

        scenes = [
            SceneMedia(
                index=s.index,
                clip=clip,
                narration=n.path,
                narration_duration_s=n.duration_s,
                words=n.words,
                sound=sound,
                title=_chapter_title(s, script),
            )
            for s, clip, n, sound in zip(script.scenes, clips, narrations, sounds, strict=True)
        ]
        key = "final"
        fp = fingerprint(*(_sha(p) for p in [*clips, *(n.path for n in narrations), *sounds]), script.title)
        if entry := self.workspace.lookup(key, fp):
            return AssembledVideo.model_validate(entry.extra["result"])
        final_dir = self.workspace.dir("final")
        result = assemble(
            AssemblyRequest(
                scenes=scenes,
                out_dir=final_dir,
                work_dir=self.workspace.root / ".assembly",
                basename=_slug(self.brief.title) or "video",
                title=script.title,
            )
        )
        video = AssembledVideo(
            video=result.video,
            captions=result.srt,
            thumbnail=result.thumbnail,
            duration_s=result.duration_s,
            chapters=result.chapters,
        )
        self.workspace.record(key, result.video, fp, provider="ffmpeg", extra={"result": video.model_dump(mode="json")})
        return video

    def publish(self, script: Script, video: AssembledVideo) -> PublishResult:
        publisher = self.providers.publisher
        yt = self.channel.youtube
        metadata = VideoMetadata(
            title=self.brief.title[:100],
            description=script.description[:4500],
            tags=list(dict.fromkeys([*yt.tags, *script.tags]))[:30],
            chapters=video.chapters,
            duration_s=video.duration_s,
            category_id=yt.category_id,
            privacy=yt.privacy,
            made_for_kids=yt.made_for_kids,
            contains_synthetic_media=yt.contains_synthetic_media,
            default_language=yt.default_language,
        )
        output_dir = Path(self.channel.output_dir) if self.channel.output_dir else self.paths.workspaces / "published" / self.channel.id
        key = "publish"
        fp = fingerprint(_sha(video.video), metadata, publisher.name)
        marker = self.workspace.root / "published.json"
        if entry := self.workspace.lookup(key, fp):
            return PublishResult.model_validate(entry.extra["result"])
        request = PublishRequest(
            channel_id=self.channel.id,
            page_id=self.brief.page_id,
            video_path=video.video,
            thumbnail_path=video.thumbnail,
            captions_path=video.captions,
            metadata=metadata,
            output_dir=output_dir,
            resume_path=self.workspace.root / f"publish-{fp[:16]}.json",
        )
        result = publisher.publish(request)
        marker.write_text(result.model_dump_json(indent=2), encoding="utf-8")
        self.workspace.record(key, marker, fp, provider=publisher.name, cost=result.cost, extra={"result": result.model_dump(mode="json")})
        self._paid("publish", key, fp, publisher.name, result.cost)
        return result


_audit_lock = threading.Lock()


def _sha(path: Path) -> str:
    from vidgen.workspace import file_sha256

    return file_sha256(path)


def _slug(text: str) -> str:
    keep = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(part for part in keep.split("-") if part)[:60]


def _chapter_title(scene: Scene, script: Script) -> str:
    words = scene.narration.split()
    return " ".join(words[:6]).rstrip(",.;:") if words else f"Scene {scene.index + 1}"


def _mtime_key(directory: Path) -> tuple:
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in directory.glob("*.y*ml")))


_channel_cache: dict[Path, tuple[tuple, dict[str, Channel]]] = {}


def configured_channels(directory: Path) -> dict[str, Channel]:
    """Channel files, reloaded when one changes (a long-running worker sees edits)."""
    stamp = _mtime_key(directory) if directory.is_dir() else ()
    cached = _channel_cache.get(directory)
    if cached is None or cached[0] != stamp:
        _channel_cache[directory] = (stamp, load_channels(directory))
    return _channel_cache[directory][1]


@lru_cache(maxsize=8)
def _ledger(url: str) -> CostLedger:
    return CostLedger.from_url(url)


class Approval(BaseModel):
    gate: str
    content: str  # fingerprint of what was approved
    notes: str = ""
    at: datetime


def approval_file(workspace: Workspace, gate: str) -> Path:
    return workspace.root / "approvals" / f"{gate}.json"


def recorded_approval(workspace: Workspace, gate: str, content: str) -> Approval | None:
    """A reviewer's earlier approval of exactly this content (a new run after a crash is not re-asked)."""
    path = approval_file(workspace, gate)
    if not path.is_file():
        return None
    approval = Approval.model_validate_json(path.read_text(encoding="utf-8"))
    return approval if approval.content == content else None


def record_approval(workspace: Workspace, gate: str, content: str, notes: str = "") -> None:
    from vidgen.files import atomic_write_text

    approval = Approval(gate=gate, content=content, notes=notes, at=datetime.now(timezone.utc))
    atomic_write_text(approval_file(workspace, gate), approval.model_dump_json(indent=2))


def content_fingerprint(paths: list[Path]) -> str:
    return fingerprint(*(_sha(p) for p in paths))
