"""Every task of a video's run that calls a service carries the tag its concurrency limit is named
after; intake (the poll's and a webhook's) paces its Notion requests by the rate limit alone."""

from __future__ import annotations

import importlib

import pytest
from prefect import Task

from vidgen.errors import ApiFailureError, InvalidInputError, NeedsReviewError, RetriableError

EXPECTED_TAGS = {
    "write-script": {"gemini"},
    "generate-image": {"gemini"},
    "animate-clip": {"kling"},
    "narrate-scene": {"elevenlabs"},
    "design-sound": {"elevenlabs"},
    "publish-video": {"youtube"},
    "read-entry": {"notion"},
    "update-card": {"notion"},
    "deliver-card-writes": {"notion"},
    "reconcile-ended-runs": {"notion"},
    "publish-previews": {"notion"},
}
# Notion calls that find or start work: not behind the videos' `notion` tag (flows.poll_notion.INTAKE_TASK).
INTAKE = {"find-work", "start-video", "apply-review", "read-page"}
LOCAL_ONLY = {"compose-frame", "assemble-video", "report-cost", "publish-review", "link-notion-page", "cancel-page-runs"}


def all_tasks() -> dict[str, Task]:
    found: dict[str, Task] = {}
    for module in ("tasks.production", "tasks.notion", "flows.poll_notion", "flows.handle_page", "flows.review"):
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, Task):
                found[value.name] = value
    return found


def test_every_service_calling_task_carries_its_tag():
    tasks = all_tasks()
    assert set(tasks) == set(EXPECTED_TAGS) | INTAKE | LOCAL_ONLY, "a new task must be classified here"
    for name, tags in EXPECTED_TAGS.items():
        assert tags <= set(tasks[name].tags), f"{name} is missing {tags - set(tasks[name].tags)}"
    for name in INTAKE | LOCAL_ONLY:
        assert not {"gemini", "kling", "elevenlabs", "notion", "youtube"} & set(tasks[name].tags), name


def test_tags_match_the_configured_limits():
    from blocks.config import concurrency_config

    limits = concurrency_config().tags
    assert limits == {"gemini": 12, "kling": 8, "elevenlabs": 6, "notion": 3, "youtube": 2}
    used = set().union(*EXPECTED_TAGS.values())
    assert used <= set(limits)


def test_paid_steps_use_the_seed_retry_policy(monkeypatch):
    monkeypatch.delenv("VIDGEN_RETRY_DELAYS", raising=False)
    from tasks.retry import paid_step_options

    options = paid_step_options()
    assert options["retry_delay_seconds"] == [60, 300, 900, 3600]
    assert options["retries"] == 4 and options["retry_jitter_factor"] > 0
    for name in ("write-script", "generate-image", "animate-clip", "narrate-scene", "design-sound", "publish-video"):
        task = all_tasks()[name]
        assert task.retry_condition_fn is options["retry_condition_fn"], name
        assert task.persist_result is True, name


class _State:
    def __init__(self, exc: BaseException):
        self.exc = exc

    def result(self):
        raise self.exc


@pytest.mark.parametrize(
    "exc, retried",
    [
        (RetriableError("429"), True),
        (TimeoutError("slow"), True),
        (InvalidInputError("bad prompt"), False),
        (ApiFailureError("401"), False),
        (NeedsReviewError("safety"), False),
        (KeyError("bug"), False),
    ],
)
def test_only_retriable_failures_are_retried(exc, retried):
    from tasks.retry import retry_if_retriable

    assert retry_if_retriable(None, None, _State(exc)) is retried
