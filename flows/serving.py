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

Runs start warm. `flow.serve()` (Prefect's `Runner.add_flow`) runs each flow run in a child process
made with multiprocessing's *spawn*: a new interpreter that imports Prefect and the flow's module
before the run can go Running, about 3 CPU-seconds here, and on 2 cores twenty runs starting together
queue for a minute. `run_flow_in_warm_process` is Prefect's `run_flow_in_subprocess` with the
*forkserver* context instead: one server process imports Prefect and our flows once
(`WARM_MODULES`), and each run is a fork of it, Running within a fraction of a second. Everything
else is Prefect's own: the same call (with the flow sent by reference, see `flow_reference`), the
same environment, control channel and signal handling, and the runner tracks, signals and kills
the child as it would a spawned one. (Upstream-worthy: a
`multiprocessing` context argument on `run_flow_in_subprocess`.) Children stay in the serving
process's process group, so stopping that group stops its runs, as before.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import signal
import sys
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import prefect.runner._starter_direct
from prefect import Flow
from prefect.client.schemas.objects import FlowRun
from prefect.context import SettingsContext, get_settings_context, serialize_context
from prefect.engine import handle_engine_signals
from prefect.exceptions import Abort, Pause
from prefect.flow_engine import (
    _CONTROL_CHANNEL_ENV_KEYS, _run_serialized_call_with_control_bootstrap, _runtime_subprocess_env, run_flow,
)  # fmt: skip
from prefect.runner import Runner
from prefect.runner._control_channel import ControlSignalStatus
from prefect.settings import Settings, get_current_settings
from prefect.states import AwaitingRetry
from prefect.utilities.callables import cloudpickle_wrapped_call
from prefect.utilities.engine import propose_state
from prefect.utilities.processutils import sanitize_subprocess_env

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


WARM_MODULES = ["flows.serving", "flows.produce_video", "flows.poll_notion", "flows.handle_page"]


def retry_refused_connections() -> None:
    """Every Prefect API client this process makes retries a refused connection, with the backoff
    PREFECT_CLIENT_MAX_RETRIES allows (`worker_settings`: about 4 minutes), as Prefect's own client
    does only once it has connected (`_has_connected`, to fail fast on a wrong address).

    Prefect makes a new client for many single calls: taking and releasing a task's tag slot, the
    rate limit, reading a block. While its server restarts, each of those failed at its first
    refused connection and failed the video (scripts/chaos.py, prefect-restart: two videos of three,
    "Unable to acquire concurrency slots on ['tag:elevenlabs']" and a slot release's ConnectError).
    A worker and its runs talk to a server that answered when `vidgen serve` started, so a refused
    connection there is a restart to wait out, not a wrong address. Idempotent;
    tests/flows/test_serving.py fails if Prefect renames the flag."""
    from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

    for client_class in (PrefectHttpxAsyncClient, PrefectHttpxSyncClient):
        if getattr(client_class, "_vidgen_retries_refused", False):
            continue
        original = client_class.__init__

        def __init__(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            _original(self, *args, **kwargs)
            self._has_connected = True

        client_class.__init__ = __init__
        client_class._vidgen_retries_refused = True


def _run_flow_with_env(
    *args: Any, env: dict[str, str] | None = None, remove_env: set[str] | None = None,
    flow: Flow[..., Any] | tuple[str, str], **kwargs: Any,
) -> None:
    """In the run's process: Prefect's own wrapper (`run_flow_in_subprocess`), the run's environment
    and a fresh Settings object first, then the engine under its signal handling. A flow given as
    (module, name) is the warm module's own object."""
    retry_refused_connections()
    for key in remove_env or ():
        os.environ.pop(key, None)
    os.environ.update(_runtime_subprocess_env(env))
    if isinstance(flow, tuple):
        flow = getattr(importlib.import_module(flow[0]), flow[1])
    with SettingsContext(profile=get_settings_context().profile, settings=Settings()):
        flow_run = kwargs.get("flow_run")
        with handle_engine_signals(getattr(flow_run, "id", None)):
            result = run_flow(*args, flow=flow, **kwargs)
            if asyncio.iscoroutine(result):
                asyncio.run(result)


def flow_reference(flow: Flow[..., Any]) -> Flow[..., Any] | tuple[str, str]:
    """(module, name) when the flow is its module's attribute of that name, else the flow itself.

    cloudpickle sends a flow's function by value (its module attribute is the Flow, not the
    function), without the globals its string annotations name (`from __future__ import
    annotations`): a parameter typed with our own model then fails validation in the child
    ("`...Model` is not fully defined"). By reference, the child uses the module it imported."""
    module, name = flow.fn.__module__, flow.fn.__name__
    found = getattr(sys.modules.get(module), name, None)
    return (module, name) if isinstance(found, Flow) and found.fn is flow.fn else flow


def warm_context(modules: list[str] = WARM_MODULES) -> multiprocessing.context.ForkServerContext:
    """The forkserver context; its server, started on first use, imports `modules` once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(modules)
    return context


def start_warm_server(modules: list[str] = WARM_MODULES) -> None:
    """Start the fork server now (it imports `modules`: seconds) so the first run does not wait for it."""
    warm_context(modules)
    multiprocessing.forkserver.ensure_running()


def run_flow_in_warm_process(
    flow: Flow[..., Any],
    flow_run: FlowRun | None = None,
    parameters: dict[str, Any] | None = None,
    wait_for: Any = None,
    context: dict[str, Any] | None = None,
    env: dict[str, str | None] | None = None,
) -> multiprocessing.process.BaseProcess:
    """Prefect's `run_flow_in_subprocess` (same signature, same payload), forked from the warm server."""
    merged_env: dict[str, str | None] = (
        get_current_settings().to_environment_variables(exclude_unset=True)
        | os.environ
        | {"PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false"}
        | (env or {})
    )
    sanitized = sanitize_subprocess_env(merged_env)
    call = cloudpickle_wrapped_call(
        _run_flow_with_env,
        env=_runtime_subprocess_env(sanitized),
        remove_env={key for key, value in merged_env.items() if value is None},
        flow=flow_reference(flow),
        flow_run=flow_run,
        parameters=parameters,
        wait_for=wait_for,
        context=context or serialize_context(),
    )
    startup_env = {key: value for key, value in sanitized.items() if key in _CONTROL_CHANNEL_ENV_KEYS}
    process = multiprocessing.get_context("forkserver").Process(
        target=_run_serialized_call_with_control_bootstrap, args=(call.args[0], startup_env)
    )
    process.start()
    return process


def serve_leaving_runs(
    flows: Iterable[tuple[Flow[..., Any], dict[str, Any]]], *, limit: int | None, warm_modules: list[str] = WARM_MODULES
) -> None:
    """`flow.serve()` for `vidgen serve`: each flow with its deployment's options (`served_flows`),
    runs forked from a server that has imported `warm_modules`, and LeavingRunner's shutdown on
    SIGTERM and Ctrl+C."""
    retry_refused_connections()
    # Prefect's direct starter calls this module attribute for every run ("patch the module to override").
    prefect.runner._starter_direct.run_flow_in_subprocess = run_flow_in_warm_process
    start_warm_server(warm_modules)
    runner = LeavingRunner(limit=limit)
    for flow, options in flows:
        runner.add_flow(flow, **options)

    async def main() -> None:
        # Runner.start installs handle_sigterm for SIGTERM; Ctrl+C takes the same path.
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, runner.handle_sigterm)
        await runner.start()

    asyncio.run(main())
