"""One video, one process: a lease on Prefect's server that a video's process holds while it works.

With several workers serving `produce-video`, Prefect can start a second process for a run whose
first process is alive: the zombie detector marks a live run Crashed after a server outage longer
than its window, the crash-restart automation puts it back to AwaitingRetry, and any worker but the
one executing it starts it again. Two processes then made one video in one workspace (measured:
clips rendered twice, assemblies colliding, published cards moved to Error).

So every process of a video first takes the page's claim: a global concurrency limit of one slot,
`video:<page id>`, taken with a lease (Prefect's own concurrency leases) that a thread renews while
the process lives. A second process waits for it, and steps aside before it pays for or writes
anything by raising Prefect's `Abort`, which ends the process without proposing a state (the engine
logs "aborted by orchestrator"; neither the runner nor a worker marks the run Crashed), so the live
process goes on owning the run. It steps aside at once when the holder ends the run (which deletes
the limit) or suspends it at a gate (the run is then no longer in the Running state this process
set), and after `ttl_s` + a margin when the holder lives on. A killed holder's lease expires after
`ttl_s` and Prefect's repossessor frees the slot, so the run's restart takes over then.

The lease outlives a Prefect outage shorter than `ttl_s` (renewals, one try each, resume when the
server answers). Past that the server revokes it; the process notices at its next step (`confirm`),
takes the claim back when nobody else has, and steps aside otherwise.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from enum import Enum
from types import TracebackType
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, VariableCreate, VariableUpdate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import ConcurrencyLeaseHolder, StateType
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.context import FlowRunContext
from prefect import get_run_logger
from prefect.exceptions import Abort, MissingContextError, ObjectAlreadyExists, PrefectHTTPStatusError
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from vidgen.config import ClaimSettings

log = logging.getLogger("vidgen.claim")

LEASE_GONE = {404, 410}  # the server no longer has the lease: expired and repossessed, or the limit deleted
SLOT_TAKEN = 423  # Prefect's "Locked": the limit's one slot is held


def say(line: str) -> None:
    """In the run's log when there is a run (what a person reading the run needs), else vidgen's."""
    try:
        get_run_logger().warning(line)
    except MissingContextError:
        log.warning(line)


def step_aside(reason: str) -> Abort:
    """Prefect's Abort, said in the run's log first (the engine itself only says "aborted by orchestrator")."""
    say(reason)
    return Abort(reason)


def claim_name(page_id: str) -> str:
    return f"video:{page_id}"


class Taking(Enum):
    ACQUIRED = "acquired"
    TAKEN = "taken"  # another process holds it
    GONE = "gone"  # it was held, and is deleted now: its holder ended the run, or a waiter took it over


class VideoTakenElsewhere(Exception):
    """Another flow run of the same page holds its claim (not a second process of this run)."""


class VideoClaim:
    """The page's claim, held by this process for its run (`flow_run_id`, whose Running state this
    process set is `state_id`). Use as a context manager around everything the run does.

    Beside the limit, the holder keeps a Prefect variable, `video-claim-<page id>`, naming its lease
    and touched at every renewal: its `updated` time, set by the server, is how a waiting process
    tells a live holder from a dead one without waiting out the lease."""

    def __init__(self, page_id: str, flow_run_id: UUID, state_id: UUID | None, settings: ClaimSettings | None = None):
        self.page_id, self.flow_run_id, self.state_id = page_id, flow_run_id, state_id
        self.settings = settings or ClaimSettings()
        self.name = claim_name(page_id)
        self.variable = f"video-claim-{page_id}"
        self.lease_id: UUID | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._seen_taken = False

    # -- the process's start: take the claim or step aside -------------------------------------------------

    def __enter__(self) -> VideoClaim:
        deadline = time.monotonic() + self.settings.give_up_after_s
        with get_client(sync_client=True) as client:
            holder = HolderWatch(self.settings.silent_after_s)
            while (outcome := self._try_acquire(client)) is not Taking.ACQUIRED:
                if outcome is Taking.GONE:
                    raise step_aside("The process that held this video ended its run, or another took it over, meanwhile; "
                                     "this one steps aside")
                if holder.silent(self._touched(client)) and self._take_over(client, holder.silent_for_s()):
                    break
                if time.monotonic() >= deadline:
                    if self._other_run_live(client):
                        raise VideoTakenElsewhere(f"another run of page {self.page_id} is working on it")
                    raise step_aside(f"Another process is making this video (it holds {self.name}); this one steps aside")
                time.sleep(self.settings.wait_step_s)
            if not self._still_ours(client):
                self._release(client)
                raise step_aside("This run moved on while this process waited for its claim; this one steps aside")
            self._announce(client)
        self._start_renewing()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """A run that ended (returned or failed) deletes the page's limit: a process still waiting for
        it then knows the video was finished and steps aside, and months of videos leave no limits
        behind. A run that suspends at a gate, or is stopped to be rescheduled, only lets go of it."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self.lease_id is None or self._lost.is_set():
            return
        ended = exc_type is None or issubclass(exc_type, Exception)
        try:
            with get_client(sync_client=True) as client:
                client.delete_variable_by_name(self.variable)
                if ended:
                    client.delete_global_concurrency_limit_by_name(self.name)
                    self.lease_id = None
                else:
                    self._release(client)
        except Exception as error:  # the lease expires by itself (ttl_s); the run's outcome matters more
            log.warning("Could not let go of %s (it lapses in %.0f s): %s", self.name, self.settings.ttl_s, error)

    # -- every step: still ours? ---------------------------------------------------------------------------

    def confirm(self) -> None:
        """At a step boundary: go on only while this process holds the claim, and no other process
        took it over (after judging this one dead). A lease the server revoked (an outage longer than
        `ttl_s`) is taken again when nobody else has taken it."""
        with get_client(sync_client=True) as client:
            if not self._lost.is_set():
                if self._taken_over(client):  # it judged this process dead (silent too long) and took over
                    self._stop.set()
                    self._lost.set()  # what this process held is the other's now: nothing to let go of
                    raise step_aside(f"Another process took this video over ({self.name}); this one steps aside")
                return
            if self._try_acquire(client) is not Taking.ACQUIRED:
                raise step_aside(f"Another process took this video over ({self.name}); this one steps aside")
            self._announce(client)
        say(f"Took {self.name} back after its lease lapsed (Prefect's server was unreachable)")
        self._lost.clear()
        self._start_renewing()

    @property
    def held(self) -> bool:
        return self.lease_id is not None and not self._lost.is_set()

    # -- Prefect calls ---------------------------------------------------------------------------------------

    def _try_acquire(self, client: SyncPrefectClient) -> Taking:
        try:
            response = ConcurrencyLimitWithLeaseResponse.model_validate(client.increment_concurrency_slots_with_lease(
                names=[self.name], slots=1, mode="concurrency", lease_duration=self.settings.ttl_s,
                holder=ConcurrencyLeaseHolder(type="flow_run", id=self.flow_run_id),
            ).json())
        except PrefectHTTPStatusError as error:
            if error.response.status_code == SLOT_TAKEN:
                self._seen_taken = True
                return Taking.TAKEN
            raise
        if response.limits:
            self.lease_id = response.lease_id
            return Taking.ACQUIRED
        client.release_concurrency_slots_with_lease(response.lease_id)  # a lease on nothing
        if self._seen_taken:  # it was held, and is deleted: its run ended, or another waiter took it over
            return Taking.GONE
        self._create_limit(client)  # the first process of this page (or of a run after the last ended)
        return self._try_acquire(client)

    def _take_over(self, client: SyncPrefectClient, silent_s: float) -> bool:
        """The holder has not renewed for `silent_s`: it is dead (a killed worker). Make the limit anew,
        so the dead lease, when Prefect repossesses it, frees a slot of a limit that is gone."""
        say(f"The holder of {self.name} has been silent for {silent_s:.0f} s: taking the video over")
        client.delete_global_concurrency_limit_by_name(self.name)
        self._seen_taken = False
        return self._try_acquire(client) is Taking.ACQUIRED

    def _create_limit(self, client: SyncPrefectClient) -> None:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=self.name, limit=1))
        except ObjectAlreadyExists:
            pass

    def _release(self, client: SyncPrefectClient) -> None:
        lease_id, self.lease_id = self.lease_id, None
        if lease_id is not None:
            client.release_concurrency_slots_with_lease(lease_id)

    def _announce(self, client: SyncPrefectClient) -> None:
        """Name this process's lease in the claim's variable (made, or overwritten)."""
        value = self._value()
        try:
            client.create_variable(VariableCreate(name=self.variable, value=value))
        except ObjectAlreadyExists:
            client.update_variable(VariableUpdate(name=self.variable, value=value))

    def _touched(self, client: SyncPrefectClient) -> datetime | None:
        """When the holder last renewed (the server's clock), or None without a holder's variable."""
        variable = client.read_variable_by_name(self.variable)
        return variable.updated if variable is not None else None

    def _still_ours(self, client: SyncPrefectClient) -> bool:
        """After a wait: is the run still in the Running state this process set? A live first process
        that finished, suspended at a gate or was restarted meanwhile has moved it on."""
        if self.state_id is None:
            return True
        state = client.read_flow_run(self.flow_run_id).state
        return state is not None and state.id == self.state_id

    def _other_run_live(self, client: SyncPrefectClient) -> bool:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(not_any_=[self.flow_run_id]),
                tags=FlowRunFilterTags(all_=[f"page:{self.page_id}"]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING])),
            ),
            limit=1,
        )
        return bool(runs)

    # -- the renewing thread -----------------------------------------------------------------------------------

    def _start_renewing(self) -> None:
        self._stop.clear()
        context = contextvars.copy_context()  # this run's Prefect settings (API URL) in the thread
        self._renewer = threading.Thread(target=context.run, args=(self._renew_until_stopped,),
                                         name=f"claim-{self.name}", daemon=True)
        self._renewer.start()

    def _renew_until_stopped(self) -> None:
        """Renew every `renew_every_s`, one try each: the client's own retries back off for minutes
        (PREFECT_CLIENT_MAX_RETRIES), long enough to miss the first moments after an outage."""
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}), get_client(sync_client=True) as client:
            while not self._stop.wait(self.settings.renew_every_s):
                lease_id = self.lease_id
                if lease_id is None:
                    return
                try:
                    client.renew_concurrency_lease(lease_id, lease_duration=self.settings.ttl_s)
                    client.update_variable(VariableUpdate(name=self.variable, value=self._value()))
                except PrefectHTTPStatusError as error:
                    if error.response.status_code in LEASE_GONE:
                        log.warning("The lease on %s lapsed; this process will take it back at its next step if it can", self.name)
                        self.lease_id = None
                        self._lost.set()
                        return
                    log.warning("Could not renew %s (%s); trying again in %.0f s", self.name, error, self.settings.renew_every_s)
                except Exception as error:  # Prefect unreachable: the lease holds for ttl_s
                    log.debug("Could not renew %s: %s", self.name, error)

    def _value(self) -> dict[str, str | int]:
        return {"lease": str(self.lease_id), "host": socket.gethostname(), "pid": os.getpid()}

    def _taken_over(self, client: SyncPrefectClient) -> bool:
        variable = client.read_variable_by_name(self.variable)
        return variable is not None and isinstance(variable.value, dict) and variable.value.get("lease") != str(self.lease_id)


class HolderWatch:
    """Whether the claim's holder has gone silent: its variable's `updated` time unchanged (or no
    variable at all) for `silent_after_s` of this process's own watching. Judged by change, not by
    comparing clocks, so a worker whose clock differs from the server's judges the same."""

    def __init__(self, silent_after_s: float):
        self.silent_after_s = silent_after_s
        self.last: datetime | None = None
        self.since = time.monotonic()
        self.seen = False

    def silent(self, touched: datetime | None) -> bool:
        if not self.seen or touched != self.last:
            self.seen, self.last, self.since = True, touched, time.monotonic()
            return False
        return self.silent_for_s() >= self.silent_after_s

    def silent_for_s(self) -> float:
        return time.monotonic() - self.since


def claim_this_video(page_id: str) -> AbstractContextManager[VideoClaim | None]:
    """The claim for the flow run this process executes; nothing to claim when the flow's function
    is called outside a run (`produce_video.fn(...)`)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return nullcontext(None)
    flow_run = context.flow_run
    return VideoClaim(page_id, flow_run.id, flow_run.state.id if flow_run.state else None)
