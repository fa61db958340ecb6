"""Where a local composite becomes a public URL, because Kling fetches its start frame by URL.

`KieFileHost` uses KIE.ai's own file upload API (same key as Kling, files kept 3 days, free), so a
Kling channel needs nothing else. `PresignedUrlHost` is for S3-compatible storage (R2, MinIO, S3):
a small service you run hands out a presigned PUT URL and the public URL the object will have.
File names carry a content hash: KIE overwrites same-named files, and the same bytes may share a name.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx

from vidgen.errors import ApiFailureError, InvalidInputError, classify_http, parse_retry_after
from vidgen.providers.kie import read_envelope, send
from vidgen.providers.settings import ProviderSettings

KIE_STREAM_UPLOAD_PATH = "/api/file-stream-upload"  # https://docs.kie.ai/file-upload-api/upload-file-stream
DEFAULT_UPLOAD_FOLDER = "vidgen/composites"


@runtime_checkable
class ImageHost(Protocol):
    name: str

    def upload(self, path: Path) -> str:
        """Publish the file and return a URL anyone (Kling) can GET."""


def hosted_name(path: Path) -> str:
    """`<stem>-<first 16 hex of sha256><suffix>`: unique per content, stable across retries."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{path.stem}-{h.hexdigest()[:16]}{path.suffix.lower()}"


def _mime_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _require_file(path: Path, provider: str) -> None:
    if not path.is_file():
        raise InvalidInputError(f"image to upload not found: {path}", provider=provider)


class KieFileHost:
    """KIE.ai's file stream upload (multipart `file`, `uploadPath`, `fileName`; answer `data.downloadUrl`)."""

    name = "kie"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://kieai.redpandaai.co",
        *,
        upload_folder: str = DEFAULT_UPLOAD_FOLDER,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 120.0,
    ):
        self.upload_folder = upload_folder
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            transport=transport,
            timeout=timeout_s,
        )

    def upload(self, path: Path) -> str:
        _require_file(path, "kie-upload")
        file_name = hosted_name(path)
        with path.open("rb") as f:
            request = self._client.build_request(
                "POST",
                KIE_STREAM_UPLOAD_PATH,
                data={"uploadPath": self.upload_folder, "fileName": file_name},
                files={"file": (file_name, f, _mime_type(path))},
            )
            response = send(self._client, request, provider="kie-upload")
        data = read_envelope(response, provider="kie-upload")
        url = data.get("downloadUrl") or data.get("fileUrl")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiFailureError(f"upload answered without a downloadUrl: {data!r}", provider="kie-upload")
        return url

    def close(self) -> None:
        self._client.close()


class PresignedUrlHost:
    """S3-compatible storage through a presign service.

    Contract of the service at `presign_endpoint`: `POST {"key", "content_type"}` answers
    `{"upload_url", "public_url", "headers"?}`; the bytes are then PUT to `upload_url` with that
    Content-Type (plus any `headers` the signature covers). No storage credentials live here.
    """

    name = "s3"

    def __init__(
        self,
        presign_endpoint: str,
        *,
        key_prefix: str = DEFAULT_UPLOAD_FOLDER,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 120.0,
    ):
        self.presign_endpoint = presign_endpoint
        self.key_prefix = key_prefix.strip("/")
        self._client = httpx.Client(transport=transport, timeout=timeout_s)

    def _checked(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code >= 400:
            raise classify_http(
                response.status_code,
                f"{what}: {response.text[:200]}",
                provider="s3",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def upload(self, path: Path) -> str:
        _require_file(path, "s3")
        content_type = _mime_type(path)
        key = f"{self.key_prefix}/{hosted_name(path)}"
        presign = self._checked(
            send(
                self._client,
                self._client.build_request(
                    "POST", self.presign_endpoint, json={"key": key, "content_type": content_type}
                ),
                provider="s3",
            ),
            "presign",
        )
        try:
            answer = presign.json()
            upload_url, public_url = answer["upload_url"], answer["public_url"]
            extra_headers = dict(answer.get("headers") or {})
        except (ValueError, KeyError, TypeError) as e:
            raise ApiFailureError(
                f"presign service answered without upload_url/public_url: {presign.text[:200]!r}", provider="s3"
            ) from e
        with path.open("rb") as f:
            put = self._client.build_request(
                "PUT", upload_url, content=f.read(), headers={**extra_headers, "Content-Type": content_type}
            )
        self._checked(send(self._client, put, provider="s3"), "upload")
        return str(public_url)

    def close(self) -> None:
        self._client.close()


def create_image_host(settings: ProviderSettings, *, transport: httpx.BaseTransport | None = None) -> ImageHost:
    """The host `VIDGEN_IMAGE_HOST` names; a missing setting is an ApiFailureError naming its env var."""
    if settings.image_host == "kie":
        if settings.kie_api_key is None:
            raise ApiFailureError("KIE_API_KEY is not set (needed by the KIE file upload image host)", provider="kie-upload")
        return KieFileHost(
            settings.kie_api_key.get_secret_value(), settings.kie_upload_base_url, transport=transport
        )
    if settings.image_host == "s3":
        if not settings.s3_presign_endpoint:
            raise ApiFailureError(
                "VIDGEN_S3_PRESIGN_ENDPOINT is not set (needed when VIDGEN_IMAGE_HOST=s3)", provider="s3"
            )
        return PresignedUrlHost(settings.s3_presign_endpoint, transport=transport)
    raise ApiFailureError(
        f"VIDGEN_IMAGE_HOST={settings.image_host!r} is not a known image host; use 'kie' or 's3'", provider="imagehost"
    )
