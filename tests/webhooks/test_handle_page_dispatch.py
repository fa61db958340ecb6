"""The default dispatch: one handle-page deployment run per event, started without waiting for it,
and never tagged page:<id> (that tag marks a page's video run, which start_video looks for)."""

from __future__ import annotations

from typing import Any

import pytest

import flows.handle_page as handle_page_module
from flows.poll_notion import page_tag


def test_dispatch_starts_a_handle_page_run_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(handle_page_module, "run_deployment", lambda name, **kwargs: calls.append((name, kwargs)))
    handle_page_module.dispatch_handle_page("page-7", "page.properties_updated")
    [(name, kwargs)] = calls
    assert name == "handle-page/handle-page" == handle_page_module.HANDLE_PAGE_DEPLOYMENT
    assert kwargs["parameters"] == {"page_id": "page-7"}
    assert kwargs["timeout"] == 0 and kwargs["as_subflow"] is False
    assert page_tag("page-7") not in kwargs["tags"]


def test_the_flow_is_named_for_its_deployment() -> None:
    assert handle_page_module.handle_page.name == handle_page_module.HANDLE_PAGE_DEPLOYMENT.split("/")[0]
