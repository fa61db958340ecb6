"""A stage of a video (a few tasks and the Notion moves around them) as one persisted task.

A run resumed after a review gate executes the flow again from the top. Every task it meets is
served from the run's cache, but a cached task still takes its tag's concurrency slot first, and on
Prefect's SQLite server that round trip often meets "database is locked" (a 503 the client backs
off from for 2 s): measured at ~2 s per cached tagged task, a minute per resume for a 6-scene video.
Grouping a stage under one untagged task whose result is persisted makes a replayed stage a single
cache lookup, while its tasks keep their tags (and limits) the first time they run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import task
from prefect.context import TaskRunContext

T = TypeVar("T")


def stage_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """One cache entry per stage name per flow run: a new run (or a rejected one re-queued) starts fresh."""
    return f"stage:{context.task_run.flow_run_id}:{parameters['name']}"


@task(name="stage", task_run_name="stage: {name}", persist_result=True, cache_key_fn=stage_cache_key)
def run_stage(name: str, work: Callable[[], T]) -> T:
    """Run `work` (which calls the stage's tasks) once per flow run; `name` must be unique in the run."""
    return work()
