"""Captions from word timings: layout limits, timing never ahead of the voice, no overlaps; chapters."""

from __future__ import annotations

import random

import pytest

from vidgen.media.captions import (
    CaptionCue,
    build_chapters,
    build_cues,
    chapter_lines,
    format_chapter_time,
    format_srt_time,
    group_words,
    parse_srt,
    to_srt,
    wrap_lines,
    write_srt,
)
from vidgen.media.synthetic import speech_timings
from vidgen.models import WordTiming

NARRATION = (
    "In the winter of 1812, the Grande Armée retreated from Moscow through snow and ice. "
    "Hunger, cold and Cossack raids destroyed it, day after day, mile after mile, until the Berezina. "
    "Of six hundred thousand men who crossed the Niemen that summer, fewer than a hundred thousand came home."
)


def _words(text: str = NARRATION, wpm: float = 160) -> list[WordTiming]:
    return speech_timings(text, words_per_minute=wpm)


def _assert_valid(cues: list[CaptionCue], words_abs: list[WordTiming]) -> None:
    """The invariants every caption track must keep, checked against the absolute word timings."""
    assert cues, "no cues"
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2, cue
        assert all(len(line) <= 42 for line in cue.lines), cue
        assert cue.end_s > cue.start_s, cue
    for a, b in zip(cues, cues[1:]):
        assert a.start_s < b.start_s, "cues not in order"
        assert a.end_s <= b.start_s + 1e-9, f"overlap: {a} / {b}"
    # every word appears once, in order, and each cue starts with (never before) its first word
    remaining = list(words_abs)
    for cue in cues:
        tokens = " ".join(cue.lines).split()
        first = remaining[0]
        assert cue.start_s >= first.start_s - 1e-9, f"cue {cue.text!r} starts before its word ({first.start_s})"
        assert cue.start_s - first.start_s < 0.0011
        assert [w.word for w in remaining[: len(tokens)]] == tokens
        spanned = remaining[len(tokens) - 1].end_s - first.start_s
        if len(tokens) > 1:
            assert spanned <= 3.5 + 1e-9, f"cue spans {spanned:.2f} s of speech"
        assert cue.end_s - cue.start_s <= max(3.5, spanned) + 0.002
        remaining = remaining[len(tokens) :]
    assert not remaining


def _absolute(words: list[WordTiming], offset: float) -> list[WordTiming]:
    return [WordTiming(word=w.word, start_s=w.start_s + offset, end_s=w.end_s + offset) for w in words]


def test_wrap_lines_balances_two_lines_within_the_limit() -> None:
    words = "the Grande Armée retreated from Moscow through snow and ice".split()
    lines = wrap_lines(words)
    assert lines is not None and len(lines) == 2
    assert all(len(line) <= 42 for line in lines)
    assert abs(len(lines[0]) - len(lines[1])) <= 12  # balanced, not a full line over a stub
    assert wrap_lines(["short", "line"]) == ["short line"]
    assert wrap_lines(["word"] * 30) is None  # 149 chars cannot fit in two lines of 42


def test_groups_close_at_sentence_ends_and_fit_the_limits() -> None:
    groups = group_words(_words())
    texts = [" ".join(w.word for w in g) for g in groups]
    assert any(t.endswith("ice.") for t in texts), texts  # sentence end closes a cue
    assert not any("ice. Hunger" in t for t in texts)
    for g in groups:
        assert wrap_lines([w.word for w in g]) is not None
        if len(g) > 1:
            assert g[-1].end_s - g[0].start_s <= 3.5


def test_overflow_breaks_at_a_comma_when_there_is_one() -> None:
    text = "Hunger, cold and the Cossack raids destroyed the army, day after day and mile after mile without end"
    groups = group_words(_words(text, wpm=400))  # fast speech: only the 2x42 character limit binds
    first = " ".join(w.word for w in groups[0])
    assert first.endswith(","), groups


def test_cues_for_several_scenes_keep_every_invariant() -> None:
    scene_texts = [NARRATION, "A short scene.", "Another one, with a comma, and then the end of the story."]
    words = [_words(t) for t in scene_texts]
    offsets = [0.35, 30.0, 33.5]
    cues = build_cues(words, offsets)
    flat = [w for ws, off in zip(words, offsets) for w in _absolute(ws, off)]
    _assert_valid(cues, flat)
    assert cues[0].start_s == pytest.approx(offsets[0] + words[0][0].start_s, abs=0.0011)


def test_cue_lingers_but_never_into_the_next_cue() -> None:
    words = [
        WordTiming(word="First.", start_s=0.0, end_s=0.4),
        WordTiming(word="Second.", start_s=0.5, end_s=0.9),
        WordTiming(word="Last.", start_s=5.0, end_s=5.3),
    ]
    cues = build_cues([words], [1.0])
    assert [c.text for c in cues] == ["First.", "Second.", "Last."]
    assert cues[0].end_s == pytest.approx(1.5)  # cut at the next cue's start
    assert cues[1].end_s == pytest.approx(1.9 + 0.6)  # lingers after the last word
    assert cues[2].start_s == pytest.approx(6.0)


def test_overlong_token_is_split_into_line_sized_pieces() -> None:
    url = "https://example.org/" + "x" * 80
    cues = build_cues([[WordTiming(word=url, start_s=0.0, end_s=2.0)]], [0.0])
    assert "".join("".join(c.lines) for c in cues) == url
    assert all(len(line) <= 42 for c in cues for line in c.lines)


def test_randomised_timings_keep_the_invariants() -> None:
    rng = random.Random(7)
    vocabulary = "a an the of river winter soldiers marched north, across frozen plains. while hunger followed every column!".split()
    for _ in range(40):
        scenes, offsets, t = [], [], 0.0
        for _ in range(rng.randint(1, 4)):
            text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 40)))
            ws = speech_timings(text, words_per_minute=rng.uniform(90, 260))
            scenes.append(ws)
            offsets.append(t + 0.35)
            t += 0.35 + ws[-1].end_s + 0.6
        cues = build_cues(scenes, offsets)
        _assert_valid(cues, [w for ws, off in zip(scenes, offsets) for w in _absolute(ws, off)])


def test_srt_round_trip_and_timestamps(tmp_path) -> None:
    assert format_srt_time(3723.456) == "01:02:03,456"
    assert format_srt_time(0) == "00:00:00,000"
    cues = build_cues([_words()], [0.35])
    path = write_srt(cues, tmp_path / "x.srt")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("1\n00:00:00,")
    assert " --> " in text
    assert parse_srt(text) == cues
    assert parse_srt(to_srt(cues).replace("\n", "\r\n")) == cues  # Windows line ends, as some tools write


def test_chapters_follow_youtube_rules() -> None:
    starts = [0.0, 8.0, 21.0, 27.0, 40.0, 60.0]
    titles = ["", "Too soon", "The march", "Too close", "", "The end"]
    chapters = build_chapters(titles, starts, total_s=75.0)
    assert [(c.start_s, c.title) for c in chapters] == [(0.0, "Intro"), (21.0, "The march"), (60.0, "The end")]
    short_last = build_chapters(["Opening", "Middle", "Coda"], [0.0, 30.0, 55.0], total_s=60.0)
    assert [c.title for c in short_last] == ["Opening", "Middle"]  # a 5 s final chapter would void the list
    assert chapter_lines(chapters) == ["0:00 Intro", "0:21 The march", "1:00 The end"]
    assert format_chapter_time(3725) == "1:02:05"
