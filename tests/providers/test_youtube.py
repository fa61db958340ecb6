"""The YouTube publisher, driven through google-api-python-client against HttpMockSequence.

Fixtures follow the documented wire protocol:
- resumable upload https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol
  (initiation POST ...?uploadType=resumable answered 200 + Location; chunk PUTs with Content-Range
  answered "308 Resume Incomplete" + Range; after an interruption an empty PUT with
  "Content-Range: bytes */<size>" asks for the server's offset; the last chunk answers 200 + video)
- videos.insert https://developers.google.com/youtube/v3/docs/videos/insert (part=snippet,status)
- thumbnails.set https://developers.google.com/youtube/v3/docs/thumbnails/set
- errors https://developers.google.com/youtube/v3/docs/errors (quotaExceeded 403, uploadLimitExceeded
  400, forbidden 403, invalidCategoryId 400, invalidTitle 400; 401 authError)
- quota https://developers.google.com/youtube/v3/determine_quota_cost (resets at midnight Pacific)
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.fernet import Fernet
from googleapiclient.http import HttpMockSequence
from pydantic import SecretStr
from sqlalchemy import create_engine

from vidgen.channels import load_channel
from vidgen.errors import ApiFailureError, InvalidInputError, RetriableError
from vidgen.ledger import QuotaExceeded, QuotaLedger
from vidgen.models import Chapter
from vidgen.providers import registry
from vidgen.providers.base import PublishRequest, Publisher, VideoMetadata
from vidgen.providers.settings import ProviderSettings
from vidgen.providers.youtube import (
    UploadDeferred,
    UploadSession,
    YouTubePublisher,
    create_publisher,
    fit_tags,
    quota_day,
    render_description,
    seconds_until_quota_reset,
    valid_chapters,
    video_resource,
)
from vidgen.providers.youtube_auth import TokenStore
from vidgen.statuses import NotionStatus

CHUNK = 256 * 1024
VIDEO_SIZE = 600_000  # three chunks: 262144 + 262144 + 75712
SESSION = "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&upload_id=xa298sd_f"
VIDEO_ID = "dQw4w9WgXcQ"
NOW = datetime(2026, 3, 10, 20, 0, tzinfo=timezone.utc)  # 13:00 PDT: 11 h to the quota reset


class RecordingHttp(HttpMockSequence):
    """HttpMockSequence that keeps each request body as bytes (chunk bodies are stream slices that
    move on) and raises a response given as an exception (a dropped connection)."""

    def request(self, uri, method="GET", body=None, headers=None, redirections=1, connection_type=None):
        if hasattr(body, "read"):
            body = body.read()
        if self._iterable and isinstance(self._iterable[0][1], BaseException):
            self.request_sequence.append((uri, method, body, headers))
            raise self._iterable.pop(0)[1]
        return super().request(uri, method, body, headers, redirections, connection_type)


def video_json(video_id: str = VIDEO_ID) -> str:
    return json.dumps({"kind": "youtube#video", "id": video_id, "status": {"uploadStatus": "uploaded"}})


def google_error(status: int, reason: str, message: str = "") -> tuple[dict, str]:
    body = {"error": {"code": status, "message": message or reason,
                      "errors": [{"domain": "youtube.video", "reason": reason, "message": message or reason}]}}
    return {"status": str(status), "content-type": "application/json"}, json.dumps(body)


INITIATED = ({"status": "200", "location": SESSION}, "")
THUMBNAIL_OK = ({"status": "200", "content-type": "application/json"},
                json.dumps({"kind": "youtube#thumbnailSetResponse", "items": [{"default": {"url": "https://i.ytimg"}}]}))


def happy_sequence() -> list:
    return [
        INITIATED,
        ({"status": "308", "range": f"bytes=0-{CHUNK - 1}"}, ""),
        ({"status": "308", "range": f"bytes=0-{2 * CHUNK - 1}"}, ""),
        ({"status": "200", "content-type": "application/json"}, video_json()),
        THUMBNAIL_OK,
    ]


@pytest.fixture
def channel(repo_root):
    return load_channel(repo_root / "channels" / "wild_frontiers.yaml")


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    video = tmp_path / "final" / "video.mp4"
    video.parent.mkdir()
    video.write_bytes(bytes(range(256)) * (VIDEO_SIZE // 256) + bytes(VIDEO_SIZE % 256))
    thumb = tmp_path / "final" / "thumbnail.png"
    thumb.write_bytes(b"\x89PNG\r\n\x1a\n" + b"thumb" * 100)
    return video, thumb


@pytest.fixture
def quota(tmp_path) -> QuotaLedger:
    return QuotaLedger(create_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}"))


def metadata(**overrides) -> VideoMetadata:
    values = dict(
        title="The Great Migration",
        description="Two million animals cross the Mara.",
        tags=["nature", "wildlife", "serengeti migration"],
        chapters=[Chapter(start_s=0, title="Dawn"), Chapter(start_s=42.7, title="The crossing"),
                  Chapter(start_s=125, title="Dusk")],
        category_id="15",
        privacy="unlisted",
        made_for_kids=False,
        contains_synthetic_media=True,
        default_language="en",
    )
    values.update(overrides)
    return VideoMetadata(**values)


def publish_request(files, tmp_path, **meta) -> PublishRequest:
    video, thumb = files
    return PublishRequest(channel_id="wild_frontiers", page_id="page-1", video_path=video, thumbnail_path=thumb,
                          metadata=metadata(**meta), output_dir=tmp_path / "out")


def publisher(channel, http, quota, sleeps=None, **kwargs) -> YouTubePublisher:
    sleeps = [] if sleeps is None else sleeps
    return YouTubePublisher(channel, http=http, quota=quota, chunksize=CHUNK, sleep=sleeps.append,
                            now=lambda: NOW, **kwargs)


def content_range(request) -> str:
    headers = {k.lower(): v for k, v in (request[3] or {}).items()}
    return headers.get("content-range", "")


# --- the happy path --------------------------------------------------------------------------------
def test_publish_uploads_in_resumable_chunks_then_sets_the_thumbnail(channel, files, tmp_path, quota):
    http = RecordingHttp(happy_sequence())
    yt = publisher(channel, http, quota)
    assert isinstance(yt, Publisher)

    result = yt.publish(publish_request(files, tmp_path))

    assert result.url == f"https://www.youtube.com/watch?v={VIDEO_ID}" and result.video_id == VIDEO_ID
    assert result.cost.usd == 0 and result.cost.units == 1650 and result.cost.unit == "quota"
    init, c1, c2, c3, thumb = http.request_sequence
    uri, method, body, headers = init
    parsed = urlparse(uri)
    assert method == "POST" and parsed.path == "/upload/youtube/v3/videos"
    query = parse_qs(parsed.query)
    assert query["uploadType"] == ["resumable"] and query["part"] == ["snippet,status"]
    assert headers["X-Upload-Content-Type"] == "video/mp4"
    assert headers["X-Upload-Content-Length"] == str(VIDEO_SIZE)
    video_bytes = files[0].read_bytes()
    assert [c[0] for c in (c1, c2, c3)] == [SESSION] * 3 and {c[1] for c in (c1, c2, c3)} == {"PUT"}
    assert [content_range(c) for c in (c1, c2, c3)] == [
        f"bytes 0-{CHUNK - 1}/{VIDEO_SIZE}",
        f"bytes {CHUNK}-{2 * CHUNK - 1}/{VIDEO_SIZE}",
        f"bytes {2 * CHUNK}-{VIDEO_SIZE - 1}/{VIDEO_SIZE}",
    ]
    assert c1[2] + c2[2] + c3[2] == video_bytes
    thumb_uri, thumb_method, thumb_body, thumb_headers = thumb
    assert thumb_method == "POST" and urlparse(thumb_uri).path == "/upload/youtube/v3/thumbnails/set"
    assert parse_qs(urlparse(thumb_uri).query)["videoId"] == [VIDEO_ID]
    assert thumb_body == files[1].read_bytes() and thumb_headers["content-type"] == "image/png"
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 1650


@pytest.mark.parametrize(
    "endpoint, root",
    [("http://127.0.0.1:9/", "http://127.0.0.1:9/"), ("https://proxy.example/youtube", "https://proxy.example/youtube/")],
)
def test_a_configured_endpoint_carries_uploads_too_with_its_scheme_and_path(channel, files, tmp_path, quota, endpoint, root):
    """googleapiclient's api_endpoint option swaps only the host of upload URLs (an http stand-in
    would get https uploads, a proxy path would be dropped); the endpoint must hold for every call."""
    http = RecordingHttp(happy_sequence())
    publisher(channel, http, quota, api_endpoint=endpoint).publish(publish_request(files, tmp_path))

    init, *_, thumb = http.request_sequence
    assert init[0].startswith(f"{root}upload/youtube/v3/videos?")
    assert thumb[0].startswith(f"{root}upload/youtube/v3/thumbnails/set?")


def test_metadata_and_synthetic_media_disclosure_are_sent(channel, files, tmp_path, quota):
    http = RecordingHttp(happy_sequence())
    publisher(channel, http, quota).publish(publish_request(files, tmp_path, title="Lions <at> dusk"))

    sent = json.loads(http.request_sequence[0][2])
    assert sent["snippet"] == {
        "title": "Lions ‹at› dusk",
        "description": "Two million animals cross the Mara.\n\n0:00 Dawn\n0:42 The crossing\n2:05 Dusk",
        "tags": ["nature", "wildlife", "serengeti migration"],
        "categoryId": "15",
        "defaultLanguage": "en",
    }
    assert sent["status"] == {"privacyStatus": "unlisted", "selfDeclaredMadeForKids": False,
                              "containsSyntheticMedia": True}


def test_description_keeps_chapters_within_the_limit_and_starts_them_at_zero():
    long = metadata(description="x" * 5000, chapters=[Chapter(start_s=0.4, title="Intro"),
                                                      Chapter(start_s=600, title="Middle"),
                                                      Chapter(start_s=3725, title="Late")])
    text = render_description(long)
    assert len(text) <= 5000
    assert text.endswith("\n\n0:00 Intro\n10:00 Middle\n1:02:05 Late")
    assert render_description(metadata(chapters=[])) == "Two million animals cross the Mara."


def test_tags_fit_youtubes_500_character_budget():
    tags = fit_tags([f"tag{i:03d}" for i in range(100)])
    assert sum(len(t) for t in tags) + len(tags) - 1 <= 500
    assert tags[0] == "tag000" and len(tags) == 71
    assert fit_tags(["a b", "a b", " ", "<x>"]) == ["a b", "x"]


def test_video_resource_reflects_kids_and_privacy_flags():
    body = video_resource(metadata(made_for_kids=True, privacy="private", contains_synthetic_media=False))
    assert body["status"] == {"privacyStatus": "private", "selfDeclaredMadeForKids": True,
                              "containsSyntheticMedia": False}


# --- interruptions -----------------------------------------------------------------------------------
def test_a_503_mid_upload_resumes_from_the_servers_offset(channel, files, tmp_path, quota):
    http = RecordingHttp([
        INITIATED,
        ({"status": "308", "range": f"bytes=0-{CHUNK - 1}"}, ""),
        google_error(503, "backendError", "Service unavailable"),  # second chunk lost
        ({"status": "308", "range": "bytes=0-393215"}, ""),  # the server kept 393216 bytes
        ({"status": "200", "content-type": "application/json"}, video_json()),
        THUMBNAIL_OK,
    ])
    sleeps: list[float] = []

    result = publisher(channel, http, quota, sleeps).publish(publish_request(files, tmp_path))

    assert result.video_id == VIDEO_ID
    _, c1, lost, probe, rest, _ = http.request_sequence
    assert content_range(lost) == f"bytes {CHUNK}-{2 * CHUNK - 1}/{VIDEO_SIZE}"
    assert content_range(probe) == f"bytes */{VIDEO_SIZE}" and probe[1] == "PUT" and not probe[2]
    assert content_range(rest) == f"bytes 393216-{VIDEO_SIZE - 1}/{VIDEO_SIZE}"
    assert rest[2] == files[0].read_bytes()[393216:]
    assert sleeps == [1.0]


def test_a_dropped_connection_mid_upload_resumes_too(channel, files, tmp_path, quota):
    http = RecordingHttp([
        INITIATED,
        ({"status": "308", "range": f"bytes=0-{CHUNK - 1}"}, ""),
        ({"status": "0"}, ConnectionResetError("connection reset by peer")),
        ({"status": "308", "range": f"bytes=0-{2 * CHUNK - 1}"}, ""),
        ({"status": "200", "content-type": "application/json"}, video_json()),
        THUMBNAIL_OK,
    ])
    result = publisher(channel, http, quota).publish(publish_request(files, tmp_path))
    assert result.video_id == VIDEO_ID
    assert content_range(http.request_sequence[4]) == f"bytes {2 * CHUNK}-{VIDEO_SIZE - 1}/{VIDEO_SIZE}"


class Killed(BaseException):
    """The worker's process dying mid-request (kill -9): nothing in the publisher handles it."""


def resumable_request(files, tmp_path) -> PublishRequest:
    return publish_request(files, tmp_path).model_copy(update={"resume_path": tmp_path / "ws" / "publish-1.json"})


def killed_after_the_first_chunk(channel, files, tmp_path, quota) -> PublishRequest:
    request = resumable_request(files, tmp_path)
    http = RecordingHttp([INITIATED, ({"status": "308", "range": f"bytes=0-{CHUNK - 1}"}, ""), ({"status": "0"}, Killed())])
    with pytest.raises(Killed):
        publisher(channel, http, quota).publish(request)
    return request


def test_a_publish_killed_mid_file_carries_on_in_a_new_process_from_youtubes_offset(channel, files, tmp_path, quota):
    """The session URI is kept in the workspace: the next process asks YouTube how much it holds and
    sends the rest, with no second upload session and no second quota reservation."""
    request = killed_after_the_first_chunk(channel, files, tmp_path, quota)
    assert UploadSession.load(request.resume_path).upload_uri == SESSION
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 1650

    http = RecordingHttp([
        ({"status": "308", "range": "bytes=0-393215"}, ""),  # the killed process's second chunk got there in part
        ({"status": "200", "content-type": "application/json"}, video_json()),
        THUMBNAIL_OK,
    ])
    result = publisher(channel, http, quota).publish(request)

    assert result.video_id == VIDEO_ID and result.cost.units == 1650
    probe, rest, thumb = http.request_sequence
    assert probe[0] == SESSION and probe[1] == "PUT" and not probe[2]
    assert content_range(probe) == f"bytes */{VIDEO_SIZE}"
    assert rest[0] == SESSION and content_range(rest) == f"bytes 393216-{VIDEO_SIZE - 1}/{VIDEO_SIZE}"
    assert rest[2] == files[0].read_bytes()[393216:]
    assert "thumbnails/set" in thumb[0]
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 1650
    assert UploadSession.load(request.resume_path).video_id == VIDEO_ID


def test_a_publish_killed_during_its_first_chunk_carries_on_too(channel, files, tmp_path, quota):
    """The session URI is kept as soon as YouTube gives it, before a byte is sent."""
    request = resumable_request(files, tmp_path)
    with pytest.raises(Killed):
        publisher(channel, RecordingHttp([INITIATED, ({"status": "0"}, Killed())]), quota).publish(request)
    assert UploadSession.load(request.resume_path).upload_uri == SESSION

    http = RecordingHttp([({"status": "308"}, ""), *happy_sequence()[1:]])  # YouTube holds nothing yet
    assert publisher(channel, http, quota).publish(request).video_id == VIDEO_ID
    probe, first, *_ = http.request_sequence
    assert content_range(probe) == f"bytes */{VIDEO_SIZE}" and content_range(first) == f"bytes 0-{CHUNK - 1}/{VIDEO_SIZE}"
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 1650


def test_a_5xx_on_the_status_check_or_the_session_start_is_retried(channel, files, tmp_path, quota):
    request = killed_after_the_first_chunk(channel, files, tmp_path, quota)
    sleeps: list[float] = []
    http = RecordingHttp([
        google_error(503, "backendError"),
        ({"status": "308", "range": f"bytes=0-{CHUNK - 1}"}, ""),
        ({"status": "308", "range": f"bytes=0-{2 * CHUNK - 1}"}, ""),
        ({"status": "200", "content-type": "application/json"}, video_json()),
        THUMBNAIL_OK,
    ])
    assert publisher(channel, http, quota, sleeps).publish(request).video_id == VIDEO_ID
    assert sleeps == [1.0] and [content_range(r) for r in http.request_sequence[:2]] == [f"bytes */{VIDEO_SIZE}"] * 2

    http = RecordingHttp([google_error(502, "backendError"), *happy_sequence()])
    sleeps = []
    assert publisher(channel, http, quota, sleeps).publish(publish_request(files, tmp_path)).video_id == VIDEO_ID
    assert sleeps == [1.0] and [r[1] for r in http.request_sequence[:2]] == ["POST", "POST"]


def test_a_publish_killed_before_youtube_answered_the_start_reserves_nothing_again_that_day(channel, files, tmp_path,
                                                                                               quota):
    request = resumable_request(files, tmp_path)
    with pytest.raises(Killed):
        publisher(channel, RecordingHttp([({"status": "0"}, Killed())]), quota).publish(request)
    assert UploadSession.load(request.resume_path).upload_uri is None

    http = RecordingHttp(happy_sequence())
    assert publisher(channel, http, quota).publish(request).video_id == VIDEO_ID
    assert http.request_sequence[0][1] == "POST"
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 1650


def test_a_file_youtube_already_holds_is_not_sent_again(channel, files, tmp_path, quota):
    """Killed after the last chunk went out but before its answer was read: the status check gets the video."""
    request = killed_after_the_first_chunk(channel, files, tmp_path, quota)
    http = RecordingHttp([({"status": "200", "content-type": "application/json"}, video_json()), THUMBNAIL_OK])

    assert publisher(channel, http, quota).publish(request).video_id == VIDEO_ID
    assert [content_range(r) for r in http.request_sequence[:1]] == [f"bytes */{VIDEO_SIZE}"]
    assert len(http.request_sequence) == 2


def test_a_publish_killed_after_the_upload_only_sets_the_thumbnail(channel, files, tmp_path, quota):
    request = resumable_request(files, tmp_path)
    http = RecordingHttp(happy_sequence()[:-1] + [({"status": "0"}, Killed())])
    with pytest.raises(Killed):
        publisher(channel, http, quota).publish(request)

    http = RecordingHttp([THUMBNAIL_OK])
    assert publisher(channel, http, quota).publish(request).video_id == VIDEO_ID
    assert len(http.request_sequence) == 1 and "thumbnails/set" in http.request_sequence[0][0]
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 1650


def test_an_expired_session_is_a_new_upload_with_its_quota_reserved_again(channel, files, tmp_path, quota):
    request = killed_after_the_first_chunk(channel, files, tmp_path, quota)
    http = RecordingHttp([google_error(404, "notFound", "upload session not found"), *happy_sequence()])

    result = publisher(channel, http, quota).publish(request)

    assert result.video_id == VIDEO_ID and result.cost.units == 1650 + 1600
    probe, init, *_ = http.request_sequence
    assert content_range(probe) == f"bytes */{VIDEO_SIZE}" and init[1] == "POST"
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 1650 + 1600


def test_a_reservation_from_a_day_that_is_over_is_made_again_on_the_day_of_the_upload(channel, files, tmp_path, quota):
    """A deferred upload retried after the reset: yesterday's reservation, with nothing sent, is void."""
    request = resumable_request(files, tmp_path)
    http = RecordingHttp([google_error(403, "quotaExceeded", "exceeded your quota")])
    with pytest.raises(UploadDeferred):
        publisher(channel, http, quota).publish(request)

    tomorrow = NOW + timedelta(days=1)
    http = RecordingHttp(happy_sequence())
    YouTubePublisher(channel, http=http, quota=quota, chunksize=CHUNK, sleep=lambda s: None,
                     now=lambda: tomorrow).publish(request)

    assert http.request_sequence[0][1] == "POST"
    assert quota.used("wild_frontiers", date(2026, 3, 11)) == 1650


def test_an_unreadable_session_starts_afresh(channel, files, tmp_path, quota, caplog):
    request = resumable_request(files, tmp_path)
    request.resume_path.parent.mkdir(parents=True)
    request.resume_path.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="vidgen.providers.youtube"):
        result = publisher(channel, RecordingHttp(happy_sequence()), quota).publish(request)
    assert result.video_id == VIDEO_ID and "unreadable upload session" in caplog.text


def test_backoff_is_exponential_and_bounded(channel, files, tmp_path, quota):
    failures = [google_error(500, "backendError")] * 4
    http = RecordingHttp([*failures])
    sleeps: list[float] = []
    with pytest.raises(RetriableError) as caught:
        publisher(channel, http, quota, sleeps, max_retries=3).publish(publish_request(files, tmp_path))
    assert sleeps == [1.0, 2.0, 4.0]
    assert caught.value.notion_status is NotionStatus.ERROR_RETRIABLE


# --- documented failures -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "error", "status", "match"),
    [
        (google_error(401, "authError", "Invalid Credentials"), ApiFailureError, NotionStatus.ERROR_API_FAILURE,
         "vidgen channels auth wild_frontiers"),
        (google_error(403, "forbidden", "Access forbidden"), ApiFailureError, NotionStatus.ERROR_API_FAILURE,
         "forbidden"),
        (google_error(400, "invalidCategoryId", "The snippet.categoryId property specifies an invalid category ID."),
         InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, "invalidCategoryId"),
        (google_error(400, "invalidTitle", "The request metadata specifies an invalid video title."),
         InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, "invalidTitle"),
        (google_error(403, "rateLimitExceeded"), RetriableError, NotionStatus.ERROR_RETRIABLE, "rateLimitExceeded"),
    ],
    ids=["401", "403-forbidden", "400-invalidCategoryId", "400-invalidTitle", "403-rateLimitExceeded"],
)
def test_documented_errors_map_to_classes(channel, files, tmp_path, quota, answer, error, status, match):
    http = RecordingHttp([answer])
    with pytest.raises(error, match=match) as caught:
        publisher(channel, http, quota).publish(publish_request(files, tmp_path))
    assert type(caught.value) is error
    assert caught.value.notion_status is status


def test_googles_quota_exceeded_defers_until_the_pacific_reset_and_fills_the_ledger(channel, files, tmp_path, quota):
    http = RecordingHttp([google_error(403, "quotaExceeded", "The request cannot be completed because you have "
                                                             "exceeded your quota.")])
    with pytest.raises(UploadDeferred) as caught:
        publisher(channel, http, quota).publish(publish_request(files, tmp_path))
    assert isinstance(caught.value, RetriableError) and isinstance(caught.value, QuotaExceeded)
    assert caught.value.retry_after == 11 * 3600
    assert caught.value.notion_status is NotionStatus.ERROR_RETRIABLE
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 10_000  # later uploads defer without asking


def test_upload_limit_exceeded_defers_for_a_day(channel, files, tmp_path, quota):
    http = RecordingHttp([google_error(400, "uploadLimitExceeded", "The user has exceeded the number of videos "
                                                                   "they may upload.")])
    with pytest.raises(UploadDeferred) as caught:
        publisher(channel, http, quota).publish(publish_request(files, tmp_path))
    assert caught.value.retry_after == 24 * 3600


def test_a_failed_thumbnail_does_not_fail_a_finished_upload(channel, files, tmp_path, quota, caplog):
    sequence = happy_sequence()[:-1] + [google_error(403, "forbidden", "The authenticated user doesnt have "
                                                                      "permissions to upload custom thumbnails.")]
    with caplog.at_level(logging.WARNING, logger="vidgen.providers.youtube"):
        result = publisher(channel, RecordingHttp(sequence), quota).publish(publish_request(files, tmp_path))
    assert result.video_id == VIDEO_ID
    assert "thumbnail was not set" in caplog.text


def test_missing_files_are_invalid_input_and_cost_no_quota(channel, files, tmp_path, quota):
    files[1].unlink()
    with pytest.raises(InvalidInputError, match="thumbnail file not found"):
        publisher(channel, RecordingHttp([]), quota).publish(publish_request(files, tmp_path))
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 0


# --- quota ---------------------------------------------------------------------------------------
def test_the_seventh_upload_of_a_day_is_deferred(channel, files, tmp_path, quota):
    for n in range(6):
        sequence = happy_sequence()
        sequence[3] = ({"status": "200", "content-type": "application/json"}, video_json(f"vid{n}"))
        assert publisher(channel, RecordingHttp(sequence), quota).publish(publish_request(files, tmp_path))
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 6 * 1650

    untouched = RecordingHttp([])
    with pytest.raises(UploadDeferred) as caught:
        publisher(channel, untouched, quota).publish(publish_request(files, tmp_path))

    assert untouched.request_sequence == []  # deferred before a byte was sent
    assert caught.value.retry_after == 11 * 3600
    assert (caught.value.used, caught.value.needed, caught.value.limit) == (9900, 1650, 10_000)
    assert "midnight Pacific" in str(caught.value)


@pytest.mark.parametrize(
    ("now", "expected_hours"),
    [
        (datetime(2026, 3, 10, 20, 0, tzinfo=timezone.utc), 11),  # PDT
        (datetime(2026, 1, 15, 8, 0, tzinfo=timezone.utc), 24),  # exactly midnight PST: a full day
        (datetime(2026, 1, 15, 7, 30, tzinfo=timezone.utc), 0.5),  # 23:30 PST
    ],
)
def test_seconds_until_quota_reset(now, expected_hours):
    assert seconds_until_quota_reset(now) == pytest.approx(expected_hours * 3600)


@pytest.mark.parametrize(
    ("reset", "now", "day", "expected_s"),
    [
        ("13:02", datetime(2026, 3, 10, 20, 0, tzinfo=timezone.utc), date(2026, 3, 9), 120),  # 13:00 PDT
        ("13:02:30", datetime(2026, 3, 10, 20, 3, tzinfo=timezone.utc), date(2026, 3, 10), 24 * 3600 - 30),
        ("23:00", datetime(2026, 3, 8, 6, 30, tzinfo=timezone.utc), date(2026, 3, 6), 30 * 60),  # 22:30 PST
        ("23:00", datetime(2026, 3, 8, 7, 30, tzinfo=timezone.utc), date(2026, 3, 7), 22.5 * 3600),  # the day DST starts
    ],
)
def test_a_moved_reset_time_turns_the_quota_day_there(monkeypatch, reset, now, day, expected_s):
    """The seam the chaos suite's quota fault uses: a reset minutes away, on the same Pacific clock."""
    monkeypatch.setenv("VIDGEN_YOUTUBE_QUOTA_RESET", reset)
    assert quota_day(now) == day
    assert seconds_until_quota_reset(now) == pytest.approx(expected_s)


def test_a_reset_time_that_is_not_one_says_so(monkeypatch):
    monkeypatch.setenv("VIDGEN_YOUTUBE_QUOTA_RESET", "midnight")
    with pytest.raises(ValueError, match="VIDGEN_YOUTUBE_QUOTA_RESET='midnight' is not a time of day"):
        quota_day(NOW)


# --- construction ----------------------------------------------------------------------------------
def test_factory_needs_the_token_key_and_a_stored_token(channel, tmp_path):
    with pytest.raises(ApiFailureError, match="VIDGEN_TOKEN_KEY"):
        create_publisher(ProviderSettings(token_dir=tmp_path / "t"), channel)
    key = Fernet.generate_key().decode()
    settings = ProviderSettings(token_key=SecretStr(key), token_dir=tmp_path / "t")
    with pytest.raises(ApiFailureError, match="vidgen channels auth wild_frontiers"):
        create_publisher(settings, channel)

    from google.oauth2.credentials import Credentials

    TokenStore(tmp_path / "t", key).save("wild_frontiers", Credentials(
        token="ya29.x", refresh_token="1//r", token_uri="https://oauth2.googleapis.com/token",
        client_id="c.apps.googleusercontent.com", client_secret="s",
        expiry=datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=50)))
    built = registry.build("publisher", "youtube", settings, channel)
    assert isinstance(built, YouTubePublisher)
    service = built.service()  # static discovery: built without touching the network
    assert service._http.credentials.token == "ya29.x"


# --- captions and chapters -------------------------------------------------------------------------
CAPTIONS_OK = ({"status": "200", "content-type": "application/json"},
               json.dumps({"kind": "youtube#caption", "id": "AUieDaZ", "snippet": {"videoId": VIDEO_ID,
                                                                                  "language": "en", "name": ""}}))
SRT = "1\n00:00:00,000 --> 00:00:02,500\nTwo million animals\n\n2\n00:00:02,500 --> 00:00:04,000\ncross the Mara.\n"


def with_captions(files, tmp_path, **meta) -> PublishRequest:
    srt = tmp_path / "final" / "captions.srt"
    srt.write_text(SRT, encoding="utf-8")
    return publish_request(files, tmp_path, **meta).model_copy(update={"captions_path": srt})


def multipart_parts(request) -> tuple[dict, bytes]:
    """The JSON metadata and the media of a multipart/related upload body."""
    headers = {k.lower(): v for k, v in (request[3] or {}).items()}
    boundary = headers["content-type"].split("boundary=")[1].strip('"').encode()
    body = request[2] if isinstance(request[2], bytes) else request[2].encode()
    parts = [p for p in body.split(b"--" + boundary) if p.strip() not in (b"", b"--")]
    metadata_part, media_part = (p.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in p else p.split(b"\n\n", 1)[1]
                                 for p in parts)
    return json.loads(metadata_part), media_part.rstrip(b"\r\n")


def test_the_captions_track_is_inserted_in_the_channels_language_and_costs_400_units(channel, files, tmp_path, quota):
    http = RecordingHttp([*happy_sequence(), CAPTIONS_OK])
    result = publisher(channel, http, quota).publish(with_captions(files, tmp_path))

    assert result.video_id == VIDEO_ID and result.warnings == []
    *_, captions = http.request_sequence
    uri, method, body, headers = captions
    parsed = urlparse(uri)
    assert method == "POST" and parsed.path == "/upload/youtube/v3/captions"
    assert parse_qs(parsed.query)["part"] == ["snippet"]
    assert parse_qs(parsed.query)["uploadType"] == ["multipart"]
    resource, media = multipart_parts(captions)
    assert resource == {"snippet": {"videoId": VIDEO_ID, "language": channel.language, "name": ""}}
    assert media == SRT.encode().rstrip(b"\n")
    assert result.cost.units == 1600 + 50 + 400
    assert quota.used("wild_frontiers", date(2026, 3, 10)) == 2050


def test_a_refused_captions_track_leaves_the_video_published_with_the_reason(channel, files, tmp_path, quota):
    refused = google_error(403, "forbidden", "The permissions associated with the request are not sufficient "
                                             "to upload the caption track.")
    result = publisher(channel, RecordingHttp([*happy_sequence(), refused]), quota).publish(
        with_captions(files, tmp_path))

    assert result.url == f"https://www.youtube.com/watch?v={VIDEO_ID}"
    assert len(result.warnings) == 1
    assert "captions track was not uploaded" in result.warnings[0] and "forbidden" in result.warnings[0]


def test_a_5xx_on_the_captions_track_is_retried(channel, files, tmp_path, quota):
    sleeps: list[float] = []
    http = RecordingHttp([*happy_sequence(), google_error(503, "backendError"), CAPTIONS_OK])
    result = publisher(channel, http, quota, sleeps).publish(with_captions(files, tmp_path))
    assert result.warnings == [] and sleeps == [1.0]
    assert [urlparse(r[0]).path for r in http.request_sequence[-2:]] == ["/upload/youtube/v3/captions"] * 2


def test_a_channel_can_turn_captions_and_chapters_off(channel, files, tmp_path, quota):
    quiet = channel.model_copy(update={"youtube": channel.youtube.model_copy(update={"captions": False,
                                                                                     "chapters": False})})
    http = RecordingHttp(happy_sequence())  # no captions request: the sequence would run dry
    result = publisher(quiet, http, quota).publish(with_captions(files, tmp_path))

    assert result.cost.units == 1650 and len(http.request_sequence) == 5
    assert json.loads(http.request_sequence[0][2])["snippet"]["description"] == "Two million animals cross the Mara."


def test_channel_yaml_defaults_turn_captions_and_chapters_on(channel):
    assert channel.youtube.captions is True and channel.youtube.chapters is True


@pytest.mark.parametrize(
    ("starts", "duration", "expected"),
    [
        ([2.0, 30.0, 60.0], None, [0.0, 30.0, 60.0]),  # the first moves to 0:00
        ([0.0, 5.0, 30.0, 60.0], None, [0.0, 30.0, 60.0]),  # one under 10 s after its predecessor is dropped
        ([0.0, 30.0, 60.0, 95.0], 100.0, [0.0, 30.0, 60.0]),  # the last would be 5 s long
        ([0.0, 30.0, 35.0], None, []),  # two left: YouTube would show none, so none are written
        ([], None, []),
    ],
)
def test_valid_chapters_follow_youtubes_rules(starts, duration, expected):
    chapters = [Chapter(start_s=s, title=f"Scene {i + 1}") for i, s in enumerate(starts)]
    assert [c.start_s for c in valid_chapters(chapters, duration)] == expected


def test_invalid_chapters_are_left_out_of_the_description():
    text = render_description(metadata(chapters=[Chapter(start_s=0, title="Dawn"), Chapter(start_s=4, title="Dusk")]))
    assert text == "Two million animals cross the Mara."
