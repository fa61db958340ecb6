"""The image hosts, against HTTP-level mocks of the documented APIs.

KIE file stream upload: https://docs.kie.ai/file-upload-api/upload-file-stream
(POST https://kieai.redpandaai.co/api/file-stream-upload, Bearer auth, multipart `file`,
`uploadPath`, `fileName`; answer {"success", "code", "msg", "data": {"downloadUrl", ...}}).
"""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr

from vidgen.errors import ApiFailureError, InvalidInputError, RetriableError
from vidgen.providers.imagehost import (
    ImageHost,
    KieFileHost,
    PresignedUrlHost,
    create_image_host,
    hosted_name,
)
from vidgen.providers.settings import ProviderSettings
from vidgen.statuses import NotionStatus

UPLOAD_URL = "https://kieai.redpandaai.co/api/file-stream-upload"

# Verbatim shape of the documented 200 example (https://docs.kie.ai/file-upload-api/upload-file-stream).
DOC_UPLOAD_OK = {
    "success": True,
    "code": 200,
    "msg": "File uploaded successfully",
    "data": {
        "fileName": "uploaded-image.png",
        "filePath": "images/user-uploads/uploaded-image.png",
        "downloadUrl": "https://tempfile.redpandaai.co/xxx/images/user-uploads/uploaded-image.png",
        "fileSize": 154832,
        "mimeType": "image/png",
        "uploadedAt": "2025-01-01T12:00:00.000Z",
    },
}


def multipart_fields(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data request, parsed by the stdlib."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    fields = {}
    for part in message.iter_parts():
        fields[part.get_param("name", header="content-disposition")] = (
            part.get_filename(),
            part.get_payload(decode=True),
        )
    return fields


@pytest.fixture
def composite(tmp_path: Path) -> Path:
    path = tmp_path / "scene-01.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"composite-pixels" * 64)
    return path


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_mocked=True)


def kie_host(router: respx.Router) -> KieFileHost:
    return KieFileHost("kie-test-key", transport=httpx.MockTransport(router.handler))


def test_kie_upload_sends_the_documented_multipart_request(router, composite):
    route = router.post(UPLOAD_URL).mock(return_value=httpx.Response(200, json=DOC_UPLOAD_OK))
    host = kie_host(router)

    url = host.upload(composite)

    assert url == DOC_UPLOAD_OK["data"]["downloadUrl"]
    assert isinstance(host, ImageHost)
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == UPLOAD_URL
    assert request.headers["authorization"] == "Bearer kie-test-key"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    fields = multipart_fields(request)
    assert set(fields) == {"file", "uploadPath", "fileName"}
    assert fields["uploadPath"] == (None, b"vidgen/composites")
    expected_name = hosted_name(composite)
    assert fields["fileName"] == (None, expected_name.encode())
    assert fields["file"] == (expected_name, composite.read_bytes())


def test_hosted_name_is_stable_per_content_and_differs_between_contents(tmp_path, composite):
    twin = tmp_path / "other" / "scene-01.png"
    twin.parent.mkdir()
    twin.write_bytes(composite.read_bytes())
    changed = tmp_path / "changed" / "scene-01.png"
    changed.parent.mkdir()
    changed.write_bytes(composite.read_bytes() + b"!")

    assert hosted_name(composite) == hosted_name(twin)
    assert hosted_name(composite) != hosted_name(changed)
    assert hosted_name(composite).startswith("scene-01-") and hosted_name(composite).endswith(".png")


@pytest.mark.parametrize(
    ("response", "error", "status"),
    [
        (httpx.Response(401, json={"success": False, "code": 401, "msg": "Unauthorized"}), ApiFailureError,
         NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(400, json={"success": False, "code": 400, "msg": "uploadPath is required"}), InvalidInputError,
         NotionStatus.ERROR_INVALID_INPUT),
        (httpx.Response(500, json={"success": False, "code": 500, "msg": "Internal server error"}), RetriableError,
         NotionStatus.ERROR_RETRIABLE),
        (httpx.Response(200, json={"success": False, "msg": "storage unavailable"}), RetriableError,
         NotionStatus.ERROR_RETRIABLE),
        (httpx.Response(200, text="<html>gateway</html>"), ApiFailureError, NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(200, json={"success": True, "code": 200, "msg": "ok", "data": {"fileName": "x.png"}}),
         ApiFailureError, NotionStatus.ERROR_API_FAILURE),
    ],
    ids=["401", "400", "500", "success-false", "malformed-json", "no-downloadUrl"],
)
def test_kie_upload_failures_are_classified(router, composite, response, error, status):
    router.post(UPLOAD_URL).mock(return_value=response)
    with pytest.raises(error) as caught:
        kie_host(router).upload(composite)
    assert type(caught.value) is error
    assert caught.value.notion_status is status


def test_kie_upload_timeout_is_retriable(router, composite):
    router.post(UPLOAD_URL).mock(side_effect=httpx.WriteTimeout("slow"))
    with pytest.raises(RetriableError, match="timed out"):
        kie_host(router).upload(composite)


def test_missing_file_is_invalid_input_and_sends_nothing(router, tmp_path):
    route = router.post(UPLOAD_URL).mock(return_value=httpx.Response(200, json=DOC_UPLOAD_OK))
    with pytest.raises(InvalidInputError, match="not found"):
        kie_host(router).upload(tmp_path / "absent.png")
    assert not route.called


PRESIGN = "http://127.0.0.1:9000/presign"


def test_presigned_host_asks_for_a_url_then_puts_the_bytes(router, composite):
    presign = router.post(PRESIGN).mock(
        return_value=httpx.Response(
            200,
            json={
                "upload_url": "https://bucket.example-r2.dev/vidgen/composites/x.png?X-Amz-Signature=abc",
                "public_url": "https://cdn.example.org/vidgen/composites/x.png",
                "headers": {"x-amz-acl": "public-read"},
            },
        )
    )
    put = router.put("https://bucket.example-r2.dev/vidgen/composites/x.png").mock(return_value=httpx.Response(200))
    host = PresignedUrlHost(PRESIGN, transport=httpx.MockTransport(router.handler))

    url = host.upload(composite)

    assert url == "https://cdn.example.org/vidgen/composites/x.png"
    asked = json.loads(presign.calls.last.request.content)
    assert asked == {"key": f"vidgen/composites/{hosted_name(composite)}", "content_type": "image/png"}
    sent = put.calls.last.request
    assert sent.url.params["X-Amz-Signature"] == "abc"
    assert sent.content == composite.read_bytes()
    assert sent.headers["content-type"] == "image/png"
    assert sent.headers["x-amz-acl"] == "public-read"


@pytest.mark.parametrize(
    ("presign_response", "put_status", "error"),
    [
        (httpx.Response(503, text="busy"), None, RetriableError),
        (httpx.Response(200, json={"public_url": "https://cdn/x.png"}), None, ApiFailureError),
        (httpx.Response(200, json={"upload_url": "https://bucket.test/x", "public_url": "https://cdn/x"}), 403,
         ApiFailureError),
    ],
    ids=["presign-503", "presign-incomplete", "put-403-expired-signature"],
)
def test_presigned_host_failures(router, composite, presign_response, put_status, error):
    router.post(PRESIGN).mock(return_value=presign_response)
    if put_status is not None:
        router.put("https://bucket.test/x").mock(
            return_value=httpx.Response(put_status, text="<Error><Code>AccessDenied</Code></Error>")
        )
    host = PresignedUrlHost(PRESIGN, transport=httpx.MockTransport(router.handler))
    with pytest.raises(error):
        host.upload(composite)


def test_create_image_host_names_the_missing_setting():
    with pytest.raises(ApiFailureError, match="KIE_API_KEY"):
        create_image_host(ProviderSettings(image_host="kie"))
    with pytest.raises(ApiFailureError, match="VIDGEN_S3_PRESIGN_ENDPOINT"):
        create_image_host(ProviderSettings(image_host="s3"))
    with pytest.raises(ApiFailureError, match="VIDGEN_IMAGE_HOST"):
        create_image_host(ProviderSettings(image_host="ftp"))
    assert isinstance(create_image_host(ProviderSettings(kie_api_key=SecretStr("k"))), KieFileHost)
    assert isinstance(
        create_image_host(ProviderSettings(image_host="s3", s3_presign_endpoint=PRESIGN)), PresignedUrlHost
    )
