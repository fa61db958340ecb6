"""How `vidgen serve` stops: at once, leaving its videos to be resumed by the next worker, not cancelled.

Prefect's `serve()` handles SIGTERM by calling `Runner.stop()` from the signal handler; inside the
running event loop that only creates the `astop()` coroutine (never awaited: "coroutine
'Runner.astop' was never awaited"), then `sys.exit` unwinds the runner, whose process manager kills
the flow-run processes, and their runs end Crashed or Cancelled, or the process hangs while it waits
for them. A deploy, `docker stop` or systemd sends exactly that signal.

`LeavingRunner` does what Prefect's own `prefect flow-run execute` does with
`PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR=reschedule`, for every run this process is executing:
tell the run's engine (over the runner's attempt-control channel) that the supervisor owns its next
state, put the run back to Scheduled (`AwaitingRetry`), stop its process, and stop the runner. The
next `vidgen serve` (or any worker serving produce-video) picks the run up again as the same run;
its persisted task results mean nothing paid is made twice, apart from a step that was in flight.
Runs waiting at a review gate have no process and are not touched.

It reaches into the runner's attempt-control channel and process manager (`_control_channel`,
`_process_manager`, `_loops_task_group`), the same objects Prefect's execute
path drives; tests/flows/test_serving.py fails if a Prefect upgrade renames them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import Abort, Pause
from prefect.runner import Runner
from prefect.runner._control_channel import ControlSignalStatus
from prefect.states import AwaitingRetry
from prefect.utilities.engine import propose_state

log = logging.getLogger("vidgen.serve")

RESCHEDULE = "reschedule"
LEFT_MESSAGE = "Its worker shut down; the next worker resumes it"
STOP_GRACE_S = 5.0  # how long a stopped run's process gets to exit on SIGTERM before SIGKILL


class LeavingRunner(Runner):
    """A Runner whose SIGTERM (and Ctrl+C) reschedules its in-flight runs and stops within seconds."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._leaving: asyncio.Task[None] | None = None

    def handle_sigterm(self, *_: Any) -> None:
        """The signal handler (Runner.start installs it for SIGTERM; `serve_leaving_runs` for SIGINT).

        It runs on the loop's thread between two steps of whatever the loop is doing, so it only
        schedules the shutdown; a second signal while that runs is ignored."""
        if self._loop is None:  # not started: nothing runs yet
            raise SystemExit(0)
        if self._leaving is not None:
            return
        log.info("Stopping: in-flight videos are rescheduled for the next worker, not cancelled")
        self._loop.call_soon_threadsafe(self._begin_leaving)

    def _begin_leaving(self) -> None:
        if self._leaving is None:
            self._leaving = asyncio.ensure_future(self.leave_runs_and_stop())

    async def leave_runs_and_stop(self) -> list[UUID]:
        """Reschedule every run this process executes, stop their processes and the runner;
        returns the runs rescheduled.

        The intent goes first, so an engine that acknowledges it exits on SIGTERM without proposing
        a state of its own (and its executor, seeing that acknowledgement, proposes none either);
        then AwaitingRetry; then SIGTERM to each run's process group, and the runner's loops stop.
        Processes still alive after `STOP_GRACE_S` (a thread blocked in a provider call holds the
        interpreter's exit) are killed. A run whose process had not yet connected to the channel
        (it was still starting) may then be proposed Crashed by its executor; the crash-restart
        automation (`vidgen setup`) reschedules it like any crashed run."""
        self.stopping = True
        poller = getattr(self, "_scheduled_run_poller", None)
        if poller is not None:
            poller.stopping = True
        run_ids = sorted(self._process_manager.flow_run_ids())
        handles = [h for h in (self._process_manager.get(run_id) for run_id in run_ids) if h is not None]
        leaving: list[UUID] = []
        for run_id in run_ids:
            status = await self._control_channel.signal(run_id, RESCHEDULE)
            if status is not ControlSignalStatus.ALREADY_CONCLUDED:  # else it reported its own end just now
                leaving.append(run_id)
        rescheduled = [run_id for run_id in leaving if await self._reschedule(run_id)]
        for handle in handles:
            try:
                handle.graceful_kill()
            except ProcessLookupError:
                pass
        # Only the loops: the runs' task group also encloses the runner's own shutdown (pausing the
        # schedules, flushing events), which a cancel there would cut short.
        self._loops_task_group.cancel_scope.cancel()
        await self._kill_survivors(handles, STOP_GRACE_S)
        return rescheduled

    async def _reschedule(self, run_id: UUID) -> bool:
        try:
            run = await self._client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final() and not run.state.is_crashed():
                return False
            state = await propose_state(self._client, AwaitingRetry(message=LEFT_MESSAGE), flow_run_id=run_id)
        except (Abort, Pause):
            return False
        except Exception:  # the server is unreachable: the zombie and crash-restart automations recover it
            log.exception("Could not reschedule flow run %s; it will be found by its missing heartbeats", run_id)
            return False
        return state.is_scheduled()

    @staticmethod
    async def _kill_survivors(handles: list[Any], grace_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + grace_s
        while any(h.is_alive() for h in handles) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
        for handle in handles:
            try:
                if handle.is_alive():
                    handle.hard_kill()
            except ProcessLookupError:
                pass


def serve_leaving_runs(deployments: Iterable[RunnerDeployment], *, limit: int | None) -> None:
    """`prefect.serve` for `vidgen serve`, with LeavingRunner's shutdown on SIGTERM and Ctrl+C."""
    runner = LeavingRunner(limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)

    async def main() -> None:
        # Runner.start installs handle_sigterm for SIGTERM; Ctrl+C takes the same path.
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, runner.handle_sigterm)
        await runner.start()

    asyncio.run(main())
