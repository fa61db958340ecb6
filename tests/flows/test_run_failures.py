"""What a produce-video run says when it fails, and when it stops being restarted after crashes."""

from __future__ import annotations

import httpx
import pytest
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

import flows.produce_video as pv
from vidgen.errors import RetriableError
from vidgen.notion.errors import NotionUnavailable

API = "http://127.0.0.1:4200/api"


def _connect_error(url: str) -> httpx.ConnectError:
    return httpx.ConnectError("All connection attempts failed", request=httpx.Request("POST", url))


@pytest.mark.parametrize(
    "exc, reason",
    [
        (_connect_error(f"{API}/concurrency_limits/increment"),
         "Prefect API unreachable (ConnectError: All connection attempts failed)"),
        (PrefectHTTPStatusError("Server error '503'", request=httpx.Request("GET", f"{API}/flow_runs/x"),
                                response=httpx.Response(503)),
         "Prefect API error (PrefectHTTPStatusError: Server error '503')"),
        (_connect_error("http://10.0.0.9:9000/render"),
         "HTTP request to 10.0.0.9 failed at Videos Generating (ConnectError: All connection attempts failed)"),
        (RetriableError("HTTP 503: upstream down", provider="kling"), "kling: HTTP 503: upstream down"),
        (NotionUnavailable("Notion at http://127.0.0.1:7700 is not reachable"), "Notion at http://127.0.0.1:7700 is not reachable"),
        (KeyError("scene"), "Videos Generating failed: KeyError: 'scene'"),
    ],
)
def test_a_failure_on_the_card_names_the_service_that_failed(exc, reason):
    with temporary_settings({PREFECT_API_URL: API}):
        assert pv.failure_reason(exc, "Videos Generating") == reason
