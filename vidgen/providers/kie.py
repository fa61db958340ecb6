"""KIE.ai's HTTP conventions and its market of models, shared by the file upload API, Kling and sound effects.

KIE answers with an envelope `{"code": ..., "msg": ..., "data": ...}` whose `code` can say "failed"
while the HTTP status still says 200, so both must be read before a body is trusted. Documented
codes (https://docs.kie.ai/market/kling/v2-5-turbo-image-to-video-pro, "Response status code"):
200 success, 401 unauthorized, 402 insufficient credits, 404 not found, 422 validation error,
429 rate limited, 455 service unavailable (maintenance), 500 server error, 501 generation failed,
505 feature disabled.

Every market model is one asynchronous task (https://docs.kie.ai/market/common/get-task-detail):
  POST /api/v1/jobs/createTask {"model", "callBackUrl"?, "input": {...the model's own fields}} -> data.taskId
  GET  /api/v1/jobs/recordInfo?taskId=...  -> data.state waiting|queuing|generating|success|fail,
       data.resultJson (a JSON *string* with resultUrls), data.failCode / data.failMsg
KIE keeps the task and its result files, so the task id is all a later process needs to collect a
result it paid for: `KeptTask` notes it next to the output before waiting, and `run_kept_task` waits
on a noted task instead of starting (and paying for) a second one. That is what makes a kill -9 of the
worker while a clip or a sound effect is being made cost nothing twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field

from vidgen.errors import (
    ApiFailureError,
    InvalidInputError,
    ProviderError,
    RetriableError,
    classify_http,
    parse_retry_after,
)
from vidgen.channels import Channel
from vidgen.files import atomic_path
from vidgen.providers.base import KeptTask
from vidgen.providers.polling import poll_until
from vidgen.providers.settings import DEFAULT_DOWNLOAD_HOSTS, ProviderSettings

log = logging.getLogger(__name__)

CREATE_TASK_PATH = "/api/v1/jobs/createTask"
RECORD_INFO_PATH = "/api/v1/jobs/recordInfo"
PENDING_STATES = frozenset({"waiting", "queuing", "generating"})

# Codes whose meaning at KIE differs from the generic HTTP reading in `classify_http`.
_KIE_CODE_CLASS: dict[int, type[ProviderError]] = {
    455: RetriableError,  # maintenance: it comes back on its own
    501: ApiFailureError,  # generation failed: retrying the same request is not known to help
    505: ApiFailureError,  # feature disabled on the account: a person must act
}
_KIE_CODE_MEANING: dict[int, str] = {
    401: "unauthorized (check KIE_API_KEY)",
    402: "insufficient credits (top up the KIE.ai account)",
    404: "not found",
    422: "validation error",
    429: "rate limited",
    455: "service unavailable (maintenance)",
    500: "server error",
    501: "generation failed",
    505: "feature disabled",
}

# Words KIE and Kling use when a prompt or image is refused on content grounds.
CONTENT_POLICY_MARKERS = ("content policy", "sensitive", "violat", "nsfw", "prohibited", "inappropriate", "safety")


def looks_like_content_policy(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in CONTENT_POLICY_MARKERS)


def kie_error(code: int, message: str, *, provider: str, retry_after: float | None = None) -> ProviderError:
    """The error class for a KIE status code (HTTP status or envelope `code`), with its documented meaning."""
    meaning = _KIE_CODE_MEANING.get(code)
    text = f"{meaning}: {message}" if meaning and message else (meaning or message or "no message")
    if code in (400, 422, 501) and looks_like_content_policy(message):
        return InvalidInputError(
            f"HTTP {code}: content policy: {message}", provider=provider, status_code=code, retry_after=retry_after
        )
    cls = _KIE_CODE_CLASS.get(code)
    if cls is not None:
        return cls(f"HTTP {code}: {text}", provider=provider, status_code=code, retry_after=retry_after)
    return classify_http(code, text, provider=provider, retry_after=retry_after)


def _message_of(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("msg", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def read_envelope(response: httpx.Response, *, provider: str) -> dict[str, Any]:
    """The `data` of a successful KIE response; otherwise the right ProviderError, Retry-After included."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if response.status_code >= 400:
        message = _message_of(body) or response.text[:200] or response.reason_phrase
        raise kie_error(response.status_code, message, provider=provider, retry_after=retry_after)
    if not isinstance(body, dict):
        raise ApiFailureError(
            f"malformed JSON from {response.request.url.path}: {response.text[:200]!r}",
            provider=provider,
            status_code=response.status_code,
        )
    code = body.get("code", 200)
    if body.get("success") is False and code == 200:
        code = 500  # the upload API can say success=false without a code of its own
    if not isinstance(code, int):
        try:
            code = int(code)
        except (TypeError, ValueError):
            raise ApiFailureError(f"unexpected response code {code!r}", provider=provider) from None
    if code != 200:
        raise kie_error(code, _message_of(body), provider=provider, retry_after=retry_after)
    data = body.get("data")
    if not isinstance(data, dict):
        raise ApiFailureError(
            f"response from {response.request.url.path} has no data object: {response.text[:200]!r}",
            provider=provider,
            status_code=response.status_code,
        )
    return data


def send(
    client: httpx.Client, request: httpx.Request, *, provider: str, stream: bool = False, follow_redirects: bool = True
) -> httpx.Response:
    """Send one request, turning transport failures into RetriableError (they are worth another try)."""
    try:
        return client.send(request, stream=stream, follow_redirects=follow_redirects)
    except httpx.TimeoutException as e:
        raise RetriableError(f"timed out talking to {request.url.host}: {e}", provider=provider) from e
    except httpx.TransportError as e:
        raise RetriableError(f"could not reach {request.url.host}: {e}", provider=provider) from e


# --- where result files may come from -------------------------------------------------------------
MAX_DOWNLOAD_REDIRECTS = 5


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port or {'https': 443, 'http': 80}.get(parsed.scheme, 0)}"


class DownloadPolicy(BaseModel):
    """Which URLs a provider's result files may be downloaded from.

    A result URL comes from the provider's answer, so whoever can alter that answer (or a redirect on
    the way) could make the worker fetch an internal address or write an attacker's file into a
    video: only https URLs on the providers' own domains are fetched, plus the API addresses the
    person configured (a proxy or a local stand-in, whatever its scheme), and each redirect is
    checked again.
    """

    domains: tuple[str, ...]  # "aiquickdraw.com" allows it and any subdomain, over https only
    origins: tuple[str, ...] = ()  # scheme://host:port of configured endpoints, allowed as they are

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> DownloadPolicy:
        domains = tuple(d.strip().lower().lstrip(".") for d in settings.download_hosts.split(",") if d.strip())
        return cls(domains=domains, origins=tuple(_origin(u) for u in (settings.kie_base_url, settings.kie_upload_base_url)))

    def allows(self, url: str) -> bool:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        if _origin(url) in self.origins:
            return True
        host = (parsed.host or "").lower()
        return parsed.scheme == "https" and any(host == d or host.endswith("." + d) for d in self.domains)

    def check(self, url: str, *, provider: str) -> None:
        if not self.allows(url):
            raise ApiFailureError(
                f"refusing to download a result from {url[:120]!r}: not https on an allowed host "
                "(VIDGEN_DOWNLOAD_HOSTS lists them)", provider=provider,
            )


# --- the market: one task per generation -------------------------------------------------------
class MarketTask(BaseModel):
    """One recordInfo answer, with resultJson already parsed."""

    task_id: str
    state: str
    result_urls: list[str] = Field(default_factory=list)
    fail_code: str = ""
    fail_msg: str = ""


def task_failure(task: MarketTask, *, provider: str) -> ProviderError:
    """A task that ended in `fail`: our input (content policy, validation) or KIE's side."""
    detail = f"task {task.task_id} failed"
    if task.fail_code:
        detail += f" (failCode {task.fail_code})"
    if task.fail_msg:
        detail += f": {task.fail_msg}"
    status = int(task.fail_code) if task.fail_code.isdigit() else None
    if looks_like_content_policy(task.fail_msg):
        return InvalidInputError(f"content policy: {detail}", provider=provider, status_code=status)
    if task.fail_code in ("400", "413", "415", "422", "451"):
        return InvalidInputError(detail, provider=provider, status_code=status)
    return ApiFailureError(detail, provider=provider, status_code=status)


def describe_timeout(timeout_s: float) -> str:
    if timeout_s >= 60 and timeout_s % 60 == 0:
        minutes = int(timeout_s // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{timeout_s:g} seconds"


class KieMarketClient:
    """KIE.ai's market endpoints: start a task, read it, wait for it, download its result.

    `provider` names the caller in errors, logs and task notes ("kling", "kie"); every failure
    leaves as a typed ProviderError. Time is `clock`/`sleep`, so tests never really wait.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.kie.ai",
        *,
        provider: str,
        what: str = "the task",
        transport: httpx.BaseTransport | None = None,
        request_timeout_s: float = 60.0,
        first_poll_s: float = 5.0,
        max_poll_s: float = 30.0,
        poll_growth: float = 1.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        downloads: DownloadPolicy | None = None,
    ):
        self.provider, self.what = provider, what
        self.downloads = downloads or DownloadPolicy(
            domains=tuple(DEFAULT_DOWNLOAD_HOSTS.split(",")), origins=(_origin(base_url),)
        )
        self.first_poll_s, self.max_poll_s, self.poll_growth = first_poll_s, max_poll_s, poll_growth
        self._sleep, self._clock = sleep, clock
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._base_url = base_url.rstrip("/")
        # No default auth header: result files live on other hosts, which must never see the key.
        self._client = httpx.Client(transport=transport, timeout=request_timeout_s, follow_redirects=True)

    def start_task(self, model: str, task_input: dict[str, object], *, callback_url: str | None = None) -> str:
        """createTask; returns KIE's taskId (from this moment the generation is paid for)."""
        body: dict[str, object] = {"model": model, "input": task_input}
        if callback_url:
            body["callBackUrl"] = callback_url
        request = self._client.build_request("POST", self._base_url + CREATE_TASK_PATH, json=body, headers=self._auth)
        data = read_envelope(send(self._client, request, provider=self.provider), provider=self.provider)
        task_id = data.get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise ApiFailureError(f"createTask answered without a taskId: {data!r}", provider=self.provider)
        return task_id

    def get_task(self, task_id: str) -> MarketTask:
        request = self._client.build_request(
            "GET", self._base_url + RECORD_INFO_PATH, params={"taskId": task_id}, headers=self._auth
        )
        data = read_envelope(send(self._client, request, provider=self.provider), provider=self.provider)
        state = data.get("state")
        if not isinstance(state, str):
            raise ApiFailureError(f"recordInfo for {task_id} has no state: {data!r}", provider=self.provider)
        urls: list[str] = []
        if state == "success":
            raw = data.get("resultJson") or ""
            try:
                parsed = json.loads(raw) if isinstance(raw, str) else raw
                urls = [u for u in parsed["resultUrls"] if isinstance(u, str) and u]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ApiFailureError(
                    f"task {task_id} succeeded but resultJson is unreadable: {raw!r}", provider=self.provider
                ) from e
            if not urls:
                raise ApiFailureError(f"task {task_id} succeeded without resultUrls", provider=self.provider)
        return MarketTask(
            task_id=str(data.get("taskId") or task_id),
            state=state,
            result_urls=urls,
            fail_code=str(data.get("failCode") or ""),
            fail_msg=str(data.get("failMsg") or ""),
        )

    def wait(self, task_id: str, timeout_s: float = 600.0) -> MarketTask:
        """Poll until the task ends, in success or fail (both returned: `task_failure` says what a
        failed one means), or `timeout_s` (RetriableError).

        Polls start at `first_poll_s` and grow by `poll_growth` to `max_poll_s`, as KIE recommends; the
        last pause is cut short so the final poll falls on the deadline. A transient error while polling
        is not the task failing: it is logged and polling goes on.
        """
        return poll_until(
            lambda: self._poll_once(task_id), lambda task: task.state in ("success", "fail"), timeout_s=timeout_s,
            timed_out=lambda: RetriableError(
                f"{self.provider.capitalize()} did not finish within {describe_timeout(timeout_s)} (task {task_id})",
                provider=self.provider,
            ),
            what=f"{self.provider} task {task_id}", first_poll_s=self.first_poll_s, max_poll_s=self.max_poll_s,
            growth=self.poll_growth, sleep=self._sleep, clock=self._clock,
        )

    def _poll_once(self, task_id: str) -> MarketTask:
        task = self.get_task(task_id)
        if task.state not in ("success", "fail") and task.state not in PENDING_STATES:
            log.warning("%s task %s is in an undocumented state %r; still waiting", self.provider, task_id, task.state)
        return task

    def download(self, url: str, out_path: Path) -> Path:
        """Stream a result file to `out_path` (atomically: a broken transfer leaves nothing behind)."""
        with atomic_path(out_path) as tmp, tmp.open("wb") as f:
            response = self._fetch(url)
            try:
                if response.status_code >= 400:
                    response.read()
                    raise classify_http(
                        response.status_code, f"downloading {url}: {response.text[:200]}", provider=self.provider
                    )
                for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
            except httpx.TransportError as e:
                raise RetriableError(f"download of {url} broke off: {e}", provider=self.provider) from e
            finally:
                response.close()
            f.flush()
            if f.tell() == 0:
                raise ApiFailureError(f"downloaded {self.what} from {url} is empty", provider=self.provider)
        return out_path

    def _fetch(self, url: str) -> httpx.Response:
        """The streamed answer for `url`, following redirects only to places `downloads` allows."""
        for _ in range(MAX_DOWNLOAD_REDIRECTS + 1):
            self.downloads.check(url, provider=self.provider)
            request = self._client.build_request("GET", url)
            response = send(self._client, request, provider=self.provider, stream=True, follow_redirects=False)
            if not response.is_redirect:
                return response
            response.close()
            url = str(response.url.join(response.headers.get("location", "")))
        raise ApiFailureError(f"downloading a result: more than {MAX_DOWNLOAD_REDIRECTS} redirects", provider=self.provider)

    def close(self) -> None:
        self._client.close()


def market_client(settings: ProviderSettings, channel: Channel, *, provider: str, what: str) -> KieMarketClient:
    """The market client a registry factory hands its provider: needs KIE_API_KEY."""
    if settings.kie_api_key is None or not settings.kie_api_key.get_secret_value().strip():
        raise ApiFailureError(
            f"KIE_API_KEY is not set; channel {channel.id!r} makes its {what}s through KIE.ai", provider=provider
        )
    return KieMarketClient(settings.kie_api_key.get_secret_value().strip(), settings.kie_base_url, provider=provider,
                           what=what, downloads=DownloadPolicy.from_settings(settings))


# --- a task paid for is waited on, never started twice ---------------------------------------------
def run_kept_task(
    client: KieMarketClient,
    out_path: Path,
    fingerprint: str,
    start: Callable[[], str],
    *,
    timeout_s: float,
) -> tuple[MarketTask, Path]:
    """The finished task for this output: the noted one if KIE still knows it, else one `start`s now.

    Returns the task and its note; the caller deletes the note once the result is safely on disk (a
    kill between the two downloads the same paid result again, for nothing). The note goes only
    when KIE says the task itself failed (raised) or no longer knows it (404: started again). An
    error while *asking* about it (a revoked key, no credits, a timeout, KIE down) keeps the note,
    so the next try, once that is mended, collects the task already paid for.
    """
    note = KeptTask.path_for(out_path, client.provider)
    task: MarketTask | None = None
    task_id = KeptTask.load(note, fingerprint)
    if task_id is not None:
        log.info("resuming %s task %s for %s", client.provider, task_id, out_path.name)
        try:
            task = client.wait(task_id, timeout_s)
        except InvalidInputError as e:
            if e.status_code != 404:
                raise
    if task is None:
        task_id = start()
        note.parent.mkdir(parents=True, exist_ok=True)
        KeptTask(task_id=task_id, fingerprint=fingerprint).save(note)
        task = client.wait(task_id, timeout_s)
    if task.state == "fail":
        note.unlink(missing_ok=True)
        raise task_failure(task, provider=client.provider)
    return task, note
