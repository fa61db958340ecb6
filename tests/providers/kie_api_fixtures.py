"""KIE.ai market bodies as the documentation shows them, shared by the Kling, sound-effect and image tests.

- createTask 200 example: {"code": 200, "msg": "success", "data": {"taskId": ...}}
  (https://docs.kie.ai/market/kling/v2-5-turbo-image-to-video-pro and every market model's page)
- recordInfo: https://docs.kie.ai/market/common/get-task-detail (data.state
  waiting/queuing/generating/success/fail; data.resultJson is a JSON *string* with resultUrls;
  failCode/failMsg on fail)
"""

from __future__ import annotations

import json
from typing import Any

API = "https://api.kie.ai"
CREATE = f"{API}/api/v1/jobs/createTask"
RECORD = f"{API}/api/v1/jobs/recordInfo"


def created(task_id: str) -> dict[str, Any]:
    return {"code": 200, "msg": "success", "data": {"taskId": task_id}}


def record(task_id: str, model: str, state: str, *, urls: list[str] | None = None, fail_code: str = "",
           fail_msg: str = "") -> dict[str, Any]:
    return {
        "code": 200,
        "message": "success",
        "data": {
            "taskId": task_id,
            "model": model,
            "state": state,
            "param": json.dumps({"model": model, "input": {}}),
            "resultJson": json.dumps({"resultUrls": urls}) if urls is not None else "",
            "failCode": fail_code,
            "failMsg": fail_msg,
            "completeTime": 1698765432000 if state in ("success", "fail") else None,
            "createTime": 1698765400000,
            "updateTime": 1698765432000,
        },
    }


def market_client(router: Any, what: str) -> Any:
    """A `KieMarketClient` (provider "kie") answered by `router`, on a clock that never really waits."""
    import httpx
    from fake_clock import FakeClock

    from vidgen.providers.kie import KieMarketClient

    clock = FakeClock()
    return KieMarketClient("kie-test-key", provider="kie", what=what, transport=httpx.MockTransport(router.handler),
                           sleep=clock.sleep, clock=clock)
