"""The signature check: only the exact body under the exact token passes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from vidgen.webhooks import NotionWebhookEvent, sign, verify_signature

BODY = b'{"id":"e1","type":"page.created"}'
TOKEN = "secret_abc"


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    expected = "sha256=" + hmac.new(TOKEN.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, TOKEN) == expected
    assert verify_signature(BODY, expected, TOKEN)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=" + "0" * 64,  # forged
        sign(BODY + b" ", TOKEN),  # over a different body
        sign(BODY, "secret_other"),  # under another token
        sign(BODY, TOKEN).removeprefix("sha256="),  # no scheme
        sign(BODY, TOKEN).upper(),
        "sha256=\u00e9",
    ],
)
def test_anything_else_fails(header: str | None) -> None:
    assert not verify_signature(BODY, header, TOKEN)


def test_no_token_never_verifies() -> None:
    assert not verify_signature(BODY, sign(BODY, ""), "")


def test_event_model_reads_the_documented_fields() -> None:
    event = NotionWebhookEvent.model_validate(
        {
            "id": "367cba44-b6f3-4c92-81e7-6a2e9659efd4",
            "timestamp": "2024-12-05T23:55:34.285Z",
            "workspace_id": "w",
            "subscription_id": "s",
            "integration_id": "i",
            "type": "page.properties_updated",
            "authors": [{"id": "u", "type": "person"}],
            "attempt_number": 3,
            "api_version": "2025-09-03",
            "entity": {"id": "153104cd-477e-809d-8dc4-ff2d96ae3090", "type": "page"},
            "data": {"parent": {"id": "db", "type": "database", "data_source_id": "36cc9195760f4b7aaf2e9f5e5e1a9c21"},
                     "updated_properties": ["a%3D"]},
            "accessible_by": [],
        }
    )
    assert event.data_source_id() == "36cc9195760f4b7aaf2e9f5e5e1a9c21"  # Notion writes ids with or without dashes
    assert event.data.updated_properties == ["a%3D"]
    assert event.attempt_number == 3
