"""Card writes are named for what they write, and the poller reads the status back from the name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import tasks.notion as notion_tasks
from vidgen.statuses import NotionStatus as S


@pytest.mark.parametrize(
    ("status", "round", "fields", "name", "read_back"),
    [
        (S.ASSETS_READY, 2, {}, "card: Assets Ready #2", S.ASSETS_READY),
        (S.ASSETS_GENERATING, 1, {"run_url": "u", "error": ""}, "card: Assets Generating + error, run_url #1", S.ASSETS_GENERATING),
        (None, 3, {"error": "bad redo"}, "card: + error #3", None),
    ],
)
def test_a_card_write_is_named_for_what_it_writes_and_read_back(monkeypatch, status, round, fields, name, read_back):
    parameters = {"status": status, "round": round, "fields": fields}
    monkeypatch.setattr(notion_tasks, "runtime", SimpleNamespace(task_run=SimpleNamespace(parameters=parameters)))
    assert notion_tasks.card_write_name() == name
    assert notion_tasks.status_in_card_write(name) is read_back


def test_other_task_names_carry_no_status():
    assert notion_tasks.status_in_card_write("read-entry-0") is None
