"""Publishing to YouTube: a resumable `videos.insert`, then `thumbnails.set` and `captions.insert`,
within the day's quota.

References: videos.insert https://developers.google.com/youtube/v3/docs/videos/insert, resumable
uploads https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol, thumbnails
https://developers.google.com/youtube/v3/docs/thumbnails/set, captions
https://developers.google.com/youtube/v3/docs/captions/insert, chapters
https://support.google.com/youtube/answer/9884579, quota costs
https://developers.google.com/youtube/v3/determine_quota_cost, errors
https://developers.google.com/youtube/v3/docs/errors.

The upload sends the file in chunks; after a 5xx or a dropped connection the client library asks
the server how much it holds (an empty PUT answered by 308 with a Range header) and carries on
from there, so a hiccup costs a chunk, not the file (tenacity drives those retries). The quota is reserved in the ledger before a
byte is sent: an upload that would overrun the channel's day is deferred to after the reset
(midnight Pacific) instead of failing, and the orchestrator sees a RetriableError with the wait.

A process that dies mid-upload (a killed worker) loses nothing paid for: the publish keeps an
`UploadSession` in the video's workspace (`PublishRequest.resume_path`), written when the quota is
reserved and when YouTube opens the upload session, before the first byte is sent. The next
publish of the same file reserves nothing, asks the server how much of the file it holds (the
documented status check) and sends the rest; once the video is up, only the thumbnail and captions
are left. A session YouTube has forgotten (they last about a week) is a new upload, with its quota
reserved again.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import socket
import time
from collections.abc import Callable
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httplib2
from sqlalchemy import Engine, create_engine
from pydantic import BaseModel
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from vidgen.channels import Channel
from vidgen.errors import ApiFailureError, InvalidInputError, ProviderError, RetriableError, classify_http
from vidgen.files import atomic_write_text
from vidgen.ledger import QuotaExceeded, QuotaLedger
from vidgen.models import Chapter, Cost
from vidgen.providers.base import PublishRequest, PublishResult, VideoMetadata
from vidgen.providers.settings import ProviderSettings
from vidgen.providers.youtube_auth import PROVIDER, TokenStore, reauth_hint

log = logging.getLogger(__name__)

UPLOAD_UNITS = 1600  # videos.insert, as the seed and the quota table count it
THUMBNAIL_UNITS = 50  # thumbnails.set
CAPTIONS_UNITS = 400  # captions.insert
CAPTIONS_TRACK_NAME = ""  # the unnamed track: YouTube shows it as the language itself ("English")
CAPTIONS_MIME = "application/octet-stream"  # captions.insert accepts text/xml, application/octet-stream, */*
MIN_CHAPTERS = 3  # YouTube's chapter rules: 0:00 first, at least three, each at least 10 s long
MIN_CHAPTER_S = 10.0
PACIFIC = ZoneInfo("America/Los_Angeles")  # YouTube's daily quota resets at midnight Pacific
RETRY_STATUSES = frozenset({500, 502, 503, 504})
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024  # a multiple of 256 KiB, as the resumable protocol requires
MAX_DESCRIPTION = 5000
MAX_TAGS_CHARS = 500
UPLOAD_LIMIT_WAIT_S = 24 * 3600.0  # uploadLimitExceeded: "try again in 24 hours"


QUOTA_RESET_ENV = "VIDGEN_YOUTUBE_QUOTA_RESET"


def quota_reset_time() -> clock_time:
    """The Pacific time of day the quota day turns: midnight, as YouTube's does.

    `VIDGEN_YOUTUBE_QUOTA_RESET` ("HH:MM" or "HH:MM:SS") moves it, for a stand-in whose quota must
    come back within a test (scripts/chaos.py's quota fault); against YouTube leave it unset.
    """
    raw = os.environ.get(QUOTA_RESET_ENV, "").strip()
    if not raw:
        return clock_time(0, 0)
    try:
        return clock_time.fromisoformat(raw)
    except ValueError as e:
        raise ValueError(f"{QUOTA_RESET_ENV}={raw!r} is not a time of day (HH:MM or HH:MM:SS, Pacific)") from e


def quota_day(now: datetime) -> date:
    """The quota day `now` falls in: the Pacific calendar date, counted from the reset time."""
    local = now.astimezone(PACIFIC)
    if local.time() >= quota_reset_time():
        return local.date()
    return local.date() - timedelta(days=1)


def seconds_until_quota_reset(now: datetime) -> float:
    """Seconds from `now` to the next reset (midnight Pacific unless moved, DST included)."""
    reset = datetime.combine(quota_day(now) + timedelta(days=1), quota_reset_time(), tzinfo=PACIFIC)
    return max(1.0, (reset.astimezone(timezone.utc) - now.astimezone(timezone.utc)).total_seconds())


class UploadDeferred(RetriableError, QuotaExceeded):
    """Today's quota cannot take this upload; `retry_after` says when it can (after the reset)."""

    def __init__(self, message: str, *, channel_id: str, used: int, needed: int, limit: int, retry_after: float):
        self.channel_id, self.used, self.needed, self.limit = channel_id, used, needed, limit
        self.provider, self.status_code, self.retry_after = PROVIDER, None, retry_after
        # Both bases have their own __init__ signatures; the message is set once, ProviderError-style.
        Exception.__init__(self, f"{PROVIDER}: {message}")


class UploadSession(BaseModel):
    """A publish under way, kept in the video's workspace so a new process carries it on."""

    units: int  # the quota this publish reserved, so carrying on reserves none
    quota_day: date
    upload_uri: str | None = None  # the resumable session's URI, once YouTube gave one
    video_id: str | None = None  # once the file is up: only the thumbnail and captions are left

    @classmethod
    def load(cls, path: Path | None) -> UploadSession | None:
        if path is None or not path.is_file():
            return None
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError:  # written by an older version, or damaged: start afresh, as before sessions were kept
            log.warning("ignoring an unreadable upload session %s", path)
            return None

    def save(self, path: Path | None) -> None:
        if path is not None:
            atomic_write_text(path, self.model_dump_json(), mode=0o600)  # the session URI uploads to the channel


def _timestamp(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _no_angle_brackets(text: str) -> str:
    """YouTube rejects titles and descriptions containing < or > (invalidTitle / invalidDescription)."""
    return text.replace("<", "‹").replace(">", "›")


_CONNECTION_ERRORS = (httplib2.HttpLib2Error, ConnectionError, socket.timeout, TimeoutError, OSError)


def _is_transient(error: BaseException) -> bool:
    """A 5xx or a dropped connection: worth the same request again (a chunk resumes from the server's offset)."""
    from googleapiclient.errors import HttpError

    if isinstance(error, HttpError):
        return int(error.resp.status) in RETRY_STATUSES
    return isinstance(error, _CONNECTION_ERRORS)


def _describe(error: BaseException | None) -> str:
    from googleapiclient.errors import HttpError

    if isinstance(error, HttpError):
        return f"HTTP {error.resp.status}"
    return str(error)


def valid_chapters(chapters: list[Chapter], duration_s: float | None = None) -> list[Chapter]:
    """The chapters YouTube will show, or none: the first moved to 0:00, any that starts less than 10 s
    after the one before it (or, with a known duration, less than 10 s before the end) dropped, and
    nothing at all when fewer than three remain, since YouTube ignores the whole list then."""
    kept: list[Chapter] = []
    for chapter in sorted(chapters, key=lambda c: c.start_s):
        if not _no_angle_brackets(chapter.title).strip():
            continue
        if not kept:
            kept.append(chapter.model_copy(update={"start_s": 0.0}))
        elif chapter.start_s - kept[-1].start_s >= MIN_CHAPTER_S:
            kept.append(chapter)
    if duration_s is not None:
        while kept and duration_s - kept[-1].start_s < MIN_CHAPTER_S:
            kept.pop()
    return kept if len(kept) >= MIN_CHAPTERS else []


def render_description(metadata: VideoMetadata, *, chapters: bool = True) -> str:
    """The description (the script's summary), then chapters as "0:00 Title" lines (YouTube's chapter
    syntax), within 5000 chars.

    Only chapters YouTube accepts are written (`valid_chapters`); `chapters=False` (the channel's
    `youtube.chapters`) leaves them out. When the text is too long the prose is shortened, never the chapters.
    """
    body = _no_angle_brackets(metadata.description).strip()
    kept = valid_chapters(metadata.chapters, metadata.duration_s) if chapters else []
    if not kept:
        return body[:MAX_DESCRIPTION]
    lines = [
        f"{_timestamp(c.start_s)} {_no_angle_brackets(c.title).strip()}" for c in kept
    ]
    block = "\n".join(lines)
    room = MAX_DESCRIPTION - len(block) - 2
    if room <= 0:
        return block[:MAX_DESCRIPTION]
    if len(body) > room:
        body = body[: max(0, room - 1)].rstrip() + "…"
    return f"{body}\n\n{block}" if body else block


def fit_tags(tags: list[str]) -> list[str]:
    """Tags in order until YouTube's 500-character budget (a tag with spaces counts its quotes) is spent."""
    kept: list[str] = []
    used = 0
    for tag in (t.strip().replace("<", "").replace(">", "") for t in tags):
        if not tag or tag in kept:
            continue
        cost = len(tag) + (2 if " " in tag else 0) + (1 if kept else 0)
        if used + cost > MAX_TAGS_CHARS:
            break
        kept.append(tag)
        used += cost
    return kept


def video_resource(metadata: VideoMetadata, *, chapters: bool = True) -> dict[str, Any]:
    """The `snippet` and `status` parts of videos.insert's body."""
    return {
        "snippet": {
            "title": _no_angle_brackets(metadata.title).strip()[:100],
            "description": render_description(metadata, chapters=chapters),
            "tags": fit_tags(metadata.tags),
            "categoryId": metadata.category_id,
            "defaultLanguage": metadata.default_language,
        },
        "status": {
            "privacyStatus": metadata.privacy,
            "selfDeclaredMadeForKids": metadata.made_for_kids,
            "containsSyntheticMedia": metadata.contains_synthetic_media,
        },
    }


def error_reason(content: bytes | str | None) -> tuple[str, str]:
    """(reason, message) from Google's JSON error body, ("", "") when there is none."""
    if not content:
        return "", ""
    try:
        error = json.loads(content)["error"]
    except (ValueError, KeyError, TypeError):
        return "", ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    errors = error.get("errors") if isinstance(error, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("reason", "")), message
    return "", message


def discovery_document(api_endpoint: str | None = None) -> dict[str, Any]:
    """YouTube Data API v3's bundled discovery document, rooted at `api_endpoint` when one is given.

    The endpoint replaces `rootUrl` itself rather than going in as client_options.api_endpoint:
    googleapiclient builds upload URLs from `rootUrl` and, given api_endpoint, swaps in only its
    host, so an http:// endpoint (a local stand-in or plain proxy) would get https:// uploads.
    """
    from googleapiclient.discovery_cache import get_static_doc

    document = json.loads(get_static_doc("youtube", "v3"))
    if api_endpoint:
        root = api_endpoint.rstrip("/") + "/"
        document["rootUrl"] = root
        document["baseUrl"] = root + document.get("servicePath", "")
        document.pop("mtlsRootUrl", None)  # an explicit endpoint is used as given, never swapped for mTLS
    return document


class YouTubePublisher:
    """Publisher for one channel. Build with `create_publisher`, or inject `http`/`service` in tests."""

    name = "youtube"

    def __init__(
        self,
        channel: Channel,
        *,
        credentials: Any = None,
        credentials_loader: Callable[[], Any] | None = None,
        http: Any = None,
        service: Any = None,
        api_endpoint: str | None = None,
        quota: QuotaLedger | None = None,
        quota_engine: Engine | None = None,
        chunksize: int = DEFAULT_CHUNK_SIZE,
        max_retries: int = 8,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 64.0,
        upload_units: int = UPLOAD_UNITS,
        thumbnail_units: int = THUMBNAIL_UNITS,
        captions_units: int = CAPTIONS_UNITS,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.channel = channel
        self._credentials, self._credentials_loader = credentials, credentials_loader
        self._http, self._service, self._api_endpoint = http, service, api_endpoint
        self._quota, self._quota_engine = quota, quota_engine
        self.chunksize, self.max_retries = chunksize, max_retries
        self.first_backoff_s, self.max_backoff_s = first_backoff_s, max_backoff_s
        self.upload_units, self.thumbnail_units, self.captions_units = upload_units, thumbnail_units, captions_units
        self._sleep, self._now = sleep, now

    # --- collaborators, built on first use so constructing a publisher touches nothing -------------
    @property
    def quota(self) -> QuotaLedger:
        if self._quota is None:
            engine = self._quota_engine
            if engine is None:
                from vidgen.config import Paths

                paths = Paths.from_env()
                paths.home.mkdir(parents=True, exist_ok=True)
                engine = create_engine(paths.ledger_url)
            self._quota = QuotaLedger(engine)
        return self._quota

    def service(self) -> Any:
        if self._service is None:
            from googleapiclient.discovery import build_from_document

            if self._http is not None:
                auth: dict[str, Any] = {"http": self._http}
            else:
                credentials = self._credentials
                if credentials is None and self._credentials_loader is not None:
                    credentials = self._credentials_loader()
                auth = {"credentials": credentials}
            self._service = build_from_document(discovery_document(self._api_endpoint), **auth)
        return self._service

    # --- publishing ------------------------------------------------------------------------------
    def publish(self, request: PublishRequest) -> PublishResult:
        """Upload, set the thumbnail, add the captions track. Only the upload can fail the publish: a
        thumbnail or captions track YouTube refuses leaves the video published, its reason in `warnings`."""
        for path, what in ((request.video_path, "video"), (request.thumbnail_path, "thumbnail")):
            if not path.is_file():
                raise InvalidInputError(f"{what} file not found: {path}", provider=PROVIDER)
        captions = self._captions_to_upload(request)
        service = self.service()  # credentials first: a channel that cannot upload spends no quota
        session = self._session(request, captions is not None)
        if session.video_id is None:
            session.video_id = self._upload_video(service, request, session)
            session.save(request.resume_path)
        video_id = session.video_id
        warnings = [self._set_thumbnail(service, video_id, request.thumbnail_path)]
        if captions is not None:
            warnings.append(self._insert_captions(service, video_id, captions))
        return PublishResult(
            url=f"https://www.youtube.com/watch?v={video_id}",
            video_id=video_id,
            cost=Cost(usd=0.0, units=session.units, unit="quota"),
            warnings=[w for w in warnings if w],
        )

    def _session(self, request: PublishRequest, captions: bool) -> UploadSession:
        """The publish an earlier process left under way, or a new one with today's quota reserved.

        A reservation made on a day that is over, with nothing sent (a deferred upload, retried after
        the reset), is void: the upload counts against the day it is made on.
        """
        today = quota_day(self._now())
        session = UploadSession.load(request.resume_path)
        if session is not None and (session.upload_uri or session.video_id or session.quota_day == today):
            log.info("the publish of %s was under way (quota reserved on %s)", request.video_path.name, session.quota_day)
            return session
        units = self.upload_units + self.thumbnail_units + (self.captions_units if captions else 0)
        self._reserve(units)
        session = UploadSession(units=units, quota_day=today)
        session.save(request.resume_path)
        return session

    def _captions_to_upload(self, request: PublishRequest) -> Path | None:
        """The .srt to upload, or None when the channel turned captions off or there is none to send."""
        if not self.channel.youtube.captions or request.captions_path is None:
            return None
        if not request.captions_path.is_file():
            raise InvalidInputError(f"captions file not found: {request.captions_path}", provider=PROVIDER)
        return request.captions_path

    def _reserve(self, units: int) -> None:
        now = self._now()
        limit = self.channel.youtube.daily_quota_units
        try:
            self.quota.reserve(self.channel.id, units, limit, day=quota_day(now))
        except QuotaExceeded as e:
            wait = seconds_until_quota_reset(now)
            raise UploadDeferred(
                f"YouTube quota for {self.channel.id}: {e.used}/{e.limit} units used today and an upload needs "
                f"{e.needed}; deferred until the reset at midnight Pacific (in {wait / 3600:.1f} h)",
                channel_id=self.channel.id, used=e.used, needed=e.needed, limit=e.limit, retry_after=wait,
            ) from e

    def _mark_quota_spent(self) -> None:
        """Google says the day's quota is gone: make the ledger agree, so later uploads defer at once."""
        now = self._now()
        day = quota_day(now)
        limit = self.channel.youtube.daily_quota_units
        rest = limit - self.quota.used(self.channel.id, day)
        if rest > 0:
            self.quota.reserve(self.channel.id, rest, limit, day=day)

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.first_backoff_s * 2 ** (attempt - 1))

    def _retrying(self, what: str) -> Retrying:
        """tenacity's loop for one request (or one chunk): 5xx and dropped connections are retried with a
        bounded exponential backoff, anything else is raised at once. A chunk that gets through ends
        the loop, so only consecutive failures spend the budget."""

        def log_wait(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("YouTube %s failed (%s); retrying in %.0f s", what, _describe(error), wait)

        return Retrying(
            retry=retry_if_exception(_is_transient),
            wait=wait_exponential(multiplier=self.first_backoff_s, max=self.max_backoff_s),
            stop=stop_after_attempt(self.max_retries + 1),
            sleep=self._sleep,
            before_sleep=log_wait,
            reraise=True,
        )

    def _upload_video(self, service: Any, request: PublishRequest, session: UploadSession) -> str:
        from googleapiclient.errors import HttpError

        insert = self._insert_request(service, request)
        response = None
        try:
            if session.upload_uri is not None:
                response = self._carry_on(insert, session, request)
            if response is None and insert.resumable_uri is None:
                session.upload_uri = insert.resumable_uri = self._open_session(insert)
                session.save(request.resume_path)  # before a byte is sent: a kill from here on carries on
            while response is None:
                _, response = self._retrying("upload")(insert.next_chunk)
        except HttpError as e:
            raise self._http_error(e, "videos.insert") from e
        except _CONNECTION_ERRORS as e:
            raise RetriableError(f"upload kept failing to connect: {e}", provider=PROVIDER) from e
        video_id = response.get("id") if isinstance(response, dict) else None
        if not video_id:
            raise ApiFailureError(f"videos.insert finished without a video id: {response!r}", provider=PROVIDER)
        return str(video_id)

    def _insert_request(self, service: Any, request: PublishRequest) -> Any:
        from googleapiclient.http import MediaFileUpload

        media = MediaFileUpload(
            str(request.video_path), mimetype=_video_mime(request.video_path), chunksize=self.chunksize, resumable=True
        )
        return service.videos().insert(
            part="snippet,status", body=video_resource(request.metadata, chapters=self.channel.youtube.chapters),
            media_body=media,
        )

    def _open_session(self, insert: Any) -> str:
        """Step one of the resumable protocol on its own: the POST with the metadata and the file's type
        and size, answered 200 with the session URI in Location. (googleapiclient's next_chunk opens
        the session and sends the first chunk in one call, so a process killed during that chunk
        would leave no URI to carry on from.)"""
        from googleapiclient.errors import ResumableUploadError

        headers = {**insert.headers, "X-Upload-Content-Type": insert.resumable.mimetype(),
                   "X-Upload-Content-Length": str(insert.resumable.size()), "content-length": str(insert.body_size)}
        resp, content = self._send("upload start", insert.http, insert.uri, method=insert.method, body=insert.body,
                                   headers=headers)
        if int(resp.status) != 200 or "location" not in resp:
            raise ResumableUploadError(resp, content)
        return str(resp["location"])

    def _carry_on(self, insert: Any, session: UploadSession, request: PublishRequest) -> dict[str, Any] | None:
        """Point `insert` at the session an earlier process opened, at the offset YouTube holds; the
        video resource when YouTube already has the whole file.

        The status check is the protocol's own: an empty PUT with "Content-Range: bytes */<size>",
        answered 308 with the Range received, or 200/201 with the video. A 404 means the session
        expired and "the upload must be restarted from the beginning": a new session, its quota
        reserved again. https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol
        """
        from googleapiclient.errors import HttpError

        uri = str(session.upload_uri)
        size = insert.resumable.size()
        resp, content = self._send("upload status check", insert.http, uri, method="PUT", body=b"",
                                   headers={"Content-Range": f"bytes */{size}", "Content-Length": "0"})
        status = int(resp.status)
        if status in (200, 201):
            log.info("YouTube already holds all of %s", request.video_path.name)
            return json.loads(content)
        if status == 308:
            insert.resumable_uri = uri
            insert.resumable_progress = int(resp["range"].rsplit("-", 1)[1]) + 1 if "range" in resp else 0
            log.info("carrying on the upload of %s from byte %d of %d", request.video_path.name,
                     insert.resumable_progress, size)
            return None
        if status in (404, 410):
            log.warning("YouTube no longer knows the upload session of %s; uploading it again", request.video_path.name)
            self._reserve(self.upload_units)
            session.units += self.upload_units
            session.upload_uri = None
            session.save(request.resume_path)
            return None
        raise HttpError(resp, content, uri=uri)

    def _send(self, what: str, http: Any, uri: str, **request: Any) -> tuple[Any, bytes]:
        """One request of the upload protocol made outside googleapiclient's own, retried like a chunk."""
        from googleapiclient.errors import HttpError

        def ask() -> tuple[Any, bytes]:
            resp, content = http.request(uri, **request)
            if int(resp.status) in RETRY_STATUSES:
                raise HttpError(resp, content, uri=uri)
            return resp, content

        return self._retrying(what)(ask)

    def _set_thumbnail(self, service: Any, video_id: str, thumbnail: Path) -> str | None:
        """Set the custom thumbnail; the reason it was not set, or None. Its failure does not undo a
        finished upload (a retry would upload twice)."""
        from googleapiclient.http import MediaFileUpload

        mime = mimetypes.guess_type(thumbnail.name)[0] or "image/png"
        return self._after_upload(
            "thumbnails.set", video_id,
            lambda: service.thumbnails().set(videoId=video_id, media_body=MediaFileUpload(str(thumbnail), mimetype=mime)),
        )

    def _insert_captions(self, service: Any, video_id: str, captions: Path) -> str | None:
        """Upload the .srt as the video's captions track in the channel's language; the reason YouTube
        refused it, or None. https://developers.google.com/youtube/v3/docs/captions/insert"""
        from googleapiclient.http import MediaFileUpload

        body = {"snippet": {"videoId": video_id, "language": self.channel.language, "name": CAPTIONS_TRACK_NAME}}
        return self._after_upload(
            "captions.insert", video_id,
            lambda: service.captions().insert(
                part="snippet", body=body,
                media_body=MediaFileUpload(str(captions), mimetype=CAPTIONS_MIME, resumable=False),
            ),
        )

    def _after_upload(self, method: str, video_id: str, build: Callable[[], Any]) -> str | None:
        """Run a request made after the video is up: retried like a chunk, and on failure the reason is
        returned (and logged), never raised, so the published video stands."""
        from googleapiclient.errors import HttpError

        try:
            self._retrying(method)(lambda: build().execute())
            return None
        except HttpError as e:
            error: ProviderError = self._http_error(e, method)
        except _CONNECTION_ERRORS as e:
            error = RetriableError(f"{method}: kept failing to connect: {e}", provider=PROVIDER)
        what = "thumbnail was not set" if method == "thumbnails.set" else "captions track was not uploaded"
        reason = f"{what}: {error}"
        log.warning("video %s is uploaded but its %s", video_id, reason)
        return reason

    def _http_error(self, e: Any, method: str) -> ProviderError:
        """Google's documented error reasons, mapped to what the orchestrator should do."""
        status = int(e.resp.status)
        reason, message = error_reason(e.content)
        text = f"{method}: {reason or 'HTTP ' + str(status)}: {message or e.reason or ''}".rstrip(": ")
        if reason in ("quotaExceeded", "dailyLimitExceeded"):
            self._mark_quota_spent()
            wait = seconds_until_quota_reset(self._now())
            limit = self.channel.youtube.daily_quota_units
            return UploadDeferred(f"{text}; deferred until the quota resets at midnight Pacific",
                                  channel_id=self.channel.id, used=limit, needed=self.upload_units, limit=limit,
                                  retry_after=wait)
        if reason == "uploadLimitExceeded":
            limit = self.channel.youtube.daily_quota_units
            return UploadDeferred(f"{text}; YouTube asks to try again in 24 hours", channel_id=self.channel.id,
                                  used=0, needed=self.upload_units, limit=limit, retry_after=UPLOAD_LIMIT_WAIT_S)
        if reason in ("rateLimitExceeded", "userRateLimitExceeded") or status == 429:
            return RetriableError(text, provider=PROVIDER, status_code=status, retry_after=60.0)
        if status == 401:
            return ApiFailureError(f"{text}; {reauth_hint(self.channel.id)}", provider=PROVIDER, status_code=status)
        if status == 403:
            return ApiFailureError(text, provider=PROVIDER, status_code=status)
        if status == 400:
            return InvalidInputError(text, provider=PROVIDER, status_code=status)
        return classify_http(status, text, provider=PROVIDER)


def _video_mime(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def create_publisher(settings: ProviderSettings, channel: Channel) -> YouTubePublisher:
    """The registry's factory: needs VIDGEN_TOKEN_KEY and the channel's stored token (`vidgen channels auth`)."""
    store = TokenStore.from_settings(settings)
    if not store.exists(channel.id):
        raise ApiFailureError(
            f"no stored YouTube token for channel {channel.id!r}; run `vidgen channels auth {channel.id}`",
            provider=PROVIDER,
        )
    return YouTubePublisher(
        channel,
        credentials_loader=lambda: store.load(channel.id),
        api_endpoint=settings.youtube_base_url,
    )
