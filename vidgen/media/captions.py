"""Captions timed from the narrator's own word timings, and chapters from scene starts.

Captions used to drift because they were timed from the script text; here every cue starts exactly
when its first word is spoken (rounded *up* to the millisecond, so never early) and ends no later than
the next cue starts (rounded *down*), so cues can neither lead the voice nor overlap each other.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from vidgen.models import Chapter, WordTiming

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_S = 3.5
LINGER_S = 0.6  # how long a cue may stay up after its last word, if nothing follows at once

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*$")
_CLAUSE_END = re.compile(r"[,;:—–]+[\"'”’)\]]*$")
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "e.g.", "i.e.", "etc.", "jr.", "sr."})


class CaptionCue(BaseModel):
    start_s: float
    end_s: float
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# --- grouping words into cues -------------------------------------------------------------------
def _ends_sentence(word: str) -> bool:
    return bool(_SENTENCE_END.search(word)) and word.lower() not in _ABBREVIATIONS


def _ends_clause(word: str) -> bool:
    return bool(_CLAUSE_END.search(word))


def wrap_lines(words: Sequence[str], *, max_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES) -> list[str] | None:
    """The most balanced way to lay `words` out in at most `max_lines` lines, or None if they don't fit.

    Balanced lines read faster than a full line over a stub; a line that ends on punctuation is
    preferred because the eye pauses there anyway.
    """
    words = list(words)
    if not words:
        return []
    one_line = " ".join(words)
    if len(one_line) <= max_chars:
        return [one_line]
    if max_lines <= 1:
        return None
    best: tuple[float, list[str]] | None = None
    for k in range(1, len(words)):
        head = " ".join(words[:k])
        if len(head) > max_chars:
            break
        rest = wrap_lines(words[k:], max_chars=max_chars, max_lines=max_lines - 1)
        if rest is None:
            continue
        score = max(len(head), *(len(line) for line in rest)) - (4 if _ends_clause(words[k - 1]) or _ends_sentence(words[k - 1]) else 0)
        if best is None or score < best[0]:
            best = (score, [head, *rest])
    return best[1] if best else None


def _split_overlong(word: WordTiming, max_chars: int) -> list[WordTiming]:
    """A 'word' wider than a line (a URL, a run-on token) as pieces sharing its time span."""
    text = word.word
    if len(text) <= max_chars:
        return [word]
    pieces = [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    span = max(word.end_s - word.start_s, 0.0)
    step = span / len(pieces)
    return [
        WordTiming(word=p, start_s=word.start_s + i * step, end_s=word.start_s + (i + 1) * step)
        for i, p in enumerate(pieces)
    ]


def _clean_words(words: Sequence[WordTiming], max_chars: int) -> list[WordTiming]:
    cleaned: list[WordTiming] = []
    for w in sorted(words, key=lambda w: w.start_s):
        text = " ".join(w.word.split())
        if not text:
            continue
        fixed = WordTiming(word=text, start_s=max(0.0, w.start_s), end_s=max(w.start_s, w.end_s))
        cleaned.extend(_split_overlong(fixed, max_chars))
    return cleaned


def group_words(
    words: Sequence[WordTiming],
    *,
    max_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    max_cue_s: float = MAX_CUE_S,
) -> list[list[WordTiming]]:
    """Split one narration's words into cue-sized groups, breaking at sentence ends and commas.

    A group closes after a sentence end, after a comma once it already fills a line, or when the next
    word would not fit (in `max_lines` lines or in `max_cue_s`); an overflowing group is cut at its
    last comma if that keeps a sensible head, otherwise before the word that does not fit.
    """
    groups: list[list[WordTiming]] = []
    current: list[WordTiming] = []

    def fits(ws: list[WordTiming]) -> bool:
        if len(ws) > 1 and ws[-1].end_s - ws[0].start_s > max_cue_s:
            return False
        return wrap_lines([w.word for w in ws], max_chars=max_chars, max_lines=max_lines) is not None

    for word in _clean_words(words, max_chars):
        current.append(word)
        while len(current) > 1 and not fits(current):
            head, tail = current[:-1], current[-1:]
            chars = len(" ".join(w.word for w in head))
            cut = next(
                (i for i in range(len(head) - 1, 0, -1) if _ends_clause(head[i - 1].word)
                 and len(" ".join(w.word for w in head[:i])) >= chars / 3),
                None,
            )
            if cut is not None:
                groups.append(head[:cut])
                current = head[cut:] + tail
            else:
                groups.append(head)
                current = tail
        text_len = len(" ".join(w.word for w in current))
        if _ends_sentence(word.word) or (_ends_clause(word.word) and text_len >= max_chars):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _ceil_ms(t: float) -> float:
    return math.ceil(t * 1000 - 1e-6) / 1000


def _floor_ms(t: float) -> float:
    return math.floor(t * 1000 + 1e-6) / 1000


def build_cues(
    scene_words: Sequence[Sequence[WordTiming]],
    offsets_s: Sequence[float],
    *,
    max_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    max_cue_s: float = MAX_CUE_S,
    linger_s: float = LINGER_S,
) -> list[CaptionCue]:
    """Caption cues for a whole video from each scene's word timings.

    `scene_words[i]` are scene i's timings relative to its narration start; `offsets_s[i]` is where that
    narration starts in the video. Sentences never span scenes, so each scene is grouped on its own.
    """
    if len(scene_words) != len(offsets_s):
        raise ValueError(f"{len(scene_words)} word lists but {len(offsets_s)} offsets")
    drafts: list[tuple[float, float, list[str]]] = []
    for words, offset in zip(scene_words, offsets_s):
        for group in group_words(words, max_chars=max_chars, max_lines=max_lines, max_cue_s=max_cue_s):
            texts = [w.word for w in group]
            lines = wrap_lines(texts, max_chars=max_chars, max_lines=max_lines) or [" ".join(texts)]
            drafts.append((offset + group[0].start_s, offset + group[-1].end_s, lines))
    drafts.sort(key=lambda d: d[0])
    cues: list[CaptionCue] = []
    for i, (start, spoken_end, lines) in enumerate(drafts):
        start_ms = _ceil_ms(start)
        end = max(spoken_end, min(spoken_end + linger_s, start + max_cue_s))
        if i + 1 < len(drafts):
            end = min(end, drafts[i + 1][0])
        end_ms = _floor_ms(end)
        if end_ms <= start_ms:  # a cue squeezed to nothing by a narrator's overlapping timings
            end_ms = start_ms + 0.001
            if i + 1 < len(drafts) and end_ms > _ceil_ms(drafts[i + 1][0]):
                continue
        cues.append(CaptionCue(start_s=start_ms, end_s=end_ms, lines=lines))
    return cues


# --- SubRip -------------------------------------------------------------------------------------
def format_srt_time(t: float) -> str:
    ms_total = int(round(t * 1000))
    hours, rem = divmod(ms_total, 3_600_000)
    minutes, rem = divmod(rem, 60_000)
    seconds, ms = divmod(rem, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{ms:03d}"


def to_srt(cues: Sequence[CaptionCue]) -> str:
    blocks = [
        f"{n}\n{format_srt_time(c.start_s)} --> {format_srt_time(c.end_s)}\n{c.text}\n"
        for n, c in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def write_srt(cues: Sequence[CaptionCue], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_srt(cues), encoding="utf-8")
    return path


_SRT_TIME = re.compile(r"(\d+):(\d{2}):(\d{2})[,.](\d{3})")


def _parse_srt_time(text: str) -> float:
    m = _SRT_TIME.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not an SRT timestamp: {text!r}")
    h, mi, s, ms = (int(g) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def parse_srt(text: str) -> list[CaptionCue]:
    """Cues back from SubRip text (what ffmpeg extracts from the MP4's subtitle track, too)."""
    cues: list[CaptionCue] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip().lstrip("\ufeff")):
        lines = [line.rstrip("\r") for line in block.splitlines()]
        arrow = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if arrow is None:
            continue
        start, _, end = lines[arrow].partition("-->")
        cues.append(
            CaptionCue(start_s=_parse_srt_time(start), end_s=_parse_srt_time(end.split()[0]), lines=lines[arrow + 1 :])
        )
    return cues


# --- chapters -----------------------------------------------------------------------------------
def build_chapters(
    titles: Sequence[str],
    starts_s: Sequence[float],
    *,
    min_chapter_s: float = 10.0,
    first_title: str = "Intro",
    total_s: float | None = None,
) -> list[Chapter]:
    """Chapters from scene titles and starts, in the shape YouTube accepts.

    YouTube ignores a chapter list unless it starts at 0:00 and every chapter lasts at least ten
    seconds, so untitled scenes extend the chapter before them and a chapter that would be too short
    is folded into its predecessor.
    """
    if len(titles) != len(starts_s):
        raise ValueError(f"{len(titles)} titles but {len(starts_s)} starts")
    chapters: list[Chapter] = []
    for title, start in zip(titles, starts_s):
        title = " ".join(title.split())
        if not chapters:
            chapters.append(Chapter(start_s=0.0, title=title or first_title))
        elif title and start - chapters[-1].start_s >= min_chapter_s:
            chapters.append(Chapter(start_s=start, title=title))
    if total_s is not None and len(chapters) > 1 and total_s - chapters[-1].start_s < min_chapter_s:
        chapters.pop()
    return chapters


def format_chapter_time(t: float) -> str:
    """YouTube's description timestamp: 0:00, 4:05, 1:02:03."""
    total = int(t)
    hours, rem = divmod(total, 3600)
    minutes, seconds = divmod(rem, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def chapter_lines(chapters: Sequence[Chapter]) -> list[str]:
    return [f"{format_chapter_time(c.start_s)} {c.title}" for c in chapters]
