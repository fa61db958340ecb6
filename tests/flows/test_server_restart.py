"""Prefect's server restarted while a video holds a tag slot: the embedded default keeps slot leases on
disk (`vidgen.stack.SERVER_DEFAULTS`), so the restarted server still counts the holder, lets it renew
and release its lease, and the slot is free again. With Prefect's default (leases in the server's
memory) the renewal and the release are refused, and the slot stays taken for good."""

from __future__ import annotations

import httpx
import pytest

from vidgen import stack

pytestmark = pytest.mark.integration

LIMIT = "tag:restart-test"


def _take_slot(api: httpx.Client, lease_s: float) -> httpx.Response:
    return api.post(
        "/v2/concurrency_limits/increment-with-lease",
        json={"names": [LIMIT], "slots": 1, "mode": "concurrency", "lease_duration": lease_s},
    )


def test_a_slot_lease_survives_a_server_restart_and_its_release_frees_the_slot(tmp_path):
    pg = stack.EmbeddedPostgres(tmp_path / "pg")
    pg.start()
    pg.ensure_database("prefect")
    port = stack.free_port()

    def start() -> stack.PrefectServer:
        return stack.start_prefect_server(tmp_path / "prefect", port, pg.url("prefect", driver="asyncpg"), ui=False)

    server = start()
    try:
        with httpx.Client(base_url=server.api_url, timeout=30) as api:
            api.post("/v2/concurrency_limits/", json={"name": LIMIT, "limit": 1}).raise_for_status()
            held = _take_slot(api, lease_s=60)
            held.raise_for_status()
            lease_id = held.json()["lease_id"]
        server.stop()
        server = start()
        with httpx.Client(base_url=server.api_url, timeout=30) as api:
            assert _take_slot(api, lease_s=60).status_code == 423  # still held: not granted twice
            renewed = api.post(f"/v2/concurrency_limits/leases/{lease_id}/renew", json={"lease_duration": 60})
            assert renewed.status_code == 204, renewed.text  # the holder keeps its slot across the restart
            released = api.post("/v2/concurrency_limits/decrement-with-lease", json={"lease_id": lease_id})
            assert released.is_success, released.text
            assert _take_slot(api, lease_s=60).status_code == 200  # the slot is free again, not leaked
    finally:
        server.stop()
        pg.stop()
