"""How much a Notion poll costs: requests and latency per poll over a 1,000-page database.

Starts a local Notion server on a temporary store, creates the Video Pipeline database and N pages
in statuses that need nothing, then for 0, 5 and 50 actionable (Queued) pages runs `poll_once`
repeatedly and prints requests per poll and latency (median / p95). A full scan (`list_entries`,
what a poll would cost without the server-side filter) is shown for comparison.

Target: an idle poll costs exactly 1 request, whatever the database size (exit status 1 if not).

    uv run python scripts/bench_notion_poll.py [--pages 1000] [--polls 30] [--actionable 0,5,50]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from vidgen.channels import Channel, load_channels
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import TokenBucket
from vidgen.notion.server import LocalNotionServer
from vidgen.polling import PollResult, poll_once
from vidgen.statuses import NotionStatus

REPO = Path(__file__).resolve().parents[1]

# Statuses that need nothing from the orchestrator (no Review chosen, no run attached).
IDLE_STATUSES = (
    NotionStatus.DRAFT,
    NotionStatus.UPLOAD_COMPLETE,
    NotionStatus.PROCESSING,
    NotionStatus.ASSETS_READY,
    NotionStatus.READY_FOR_REVIEW,
    NotionStatus.REVIEW_REJECTED,
    NotionStatus.ERROR_API_FAILURE,
)


class RequestCounter:
    """Counts HTTP requests leaving notion-client's httpx client (retries included)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, request: httpx.Request) -> None:
        self.count += 1


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _measure(counter: RequestCounter, polls: int, action: Callable[[], object]) -> tuple[list[int], list[float], object]:
    requests: list[int] = []
    latencies: list[float] = []
    last: object = None
    for _ in range(polls):
        before = counter.count
        start = time.perf_counter()
        last = action()
        latencies.append((time.perf_counter() - start) * 1000)
        requests.append(counter.count - before)
    return requests, latencies, last


def _populate(gw: NotionGateway, channels: dict[str, Channel], pages: int, workers: int) -> list[str]:
    """`pages` entries spread over the idle statuses and channels; returns the Draft ones' ids."""
    values = [c.notion_value for c in channels.values() if c.active]

    def make(i: int) -> tuple[str, NotionStatus]:
        status = IDLE_STATUSES[i % len(IDLE_STATUSES)]
        entry = gw.create_entry(
            title=f"Video {i:04d}", channel=values[i % len(values)], topic=f"Topic number {i}", status=status
        )
        return entry.page_id, status

    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = list(pool.map(make, range(pages)))
    return [page_id for page_id, status in made if status is NotionStatus.DRAFT]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000, help="pages in the database (default 1000)")
    parser.add_argument("--polls", type=int, default=30, help="polls measured per row (default 30)")
    parser.add_argument("--actionable", default="0,5,50", help="Queued pages per row, comma-separated")
    parser.add_argument("--workers", type=int, default=8, help="threads creating the pages (setup only)")
    args = parser.parse_args(argv)
    levels = sorted({int(x) for x in args.actionable.split(",")})

    channels = load_channels(REPO / "channels")
    counter = RequestCounter()
    with tempfile.TemporaryDirectory() as tmp, LocalNotionServer(Path(tmp) / "bench.sqlite") as server:
        http = httpx.Client(event_hooks={"request": [counter]})
        # The local server is not rate limited here; a 3 req/s limiter would measure the limiter.
        gw = NotionGateway(server.token, base_url=server.base_url, client=http, limiter=TokenBucket.unlimited())
        gw.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
        start = time.perf_counter()
        drafts = _populate(gw, channels, args.pages, args.workers)
        print(f"setup: {args.pages} pages in {time.perf_counter() - start:.1f} s ({counter.count} requests)")
        if len(drafts) < levels[-1]:
            print(f"need at least {levels[-1]} Draft pages to queue; use more --pages", file=sys.stderr)
            return 2

        print()
        print(f"{'poll':<28}{'pages':>7}{'actionable':>12}{'requests/poll':>15}{'median ms':>11}{'p95 ms':>9}")
        idle_requests: list[int] = []
        queued = 0
        for level in levels:
            for page_id in drafts[queued:level]:
                gw.update_entry(gw.get_entry(page_id), status=NotionStatus.QUEUED)
            queued = max(queued, level)
            requests, latencies, result = _measure(
                counter, args.polls, lambda: poll_once(gw, channels, write_back=False)
            )
            assert isinstance(result, PollResult) and len(result.to_start) == level
            if level == 0:
                idle_requests = requests
            spread = f"{min(requests)}" if min(requests) == max(requests) else f"{min(requests)}-{max(requests)}"
            print(
                f"{'poll_once':<28}{args.pages:>7}{level:>12}{spread:>15}"
                f"{statistics.median(latencies):>11.1f}{_percentile(latencies, 0.95):>9.1f}"
            )
        requests, latencies, _ = _measure(counter, max(3, args.polls // 5), gw.list_entries)
        print(
            f"{'full scan (for comparison)':<28}{args.pages:>7}{'-':>12}{requests[0]:>15}"
            f"{statistics.median(latencies):>11.1f}{_percentile(latencies, 0.95):>9.1f}"
        )
        http.close()

    print()
    if idle_requests and set(idle_requests) == {1}:
        print(f"target met: an idle poll over {args.pages} pages costs exactly 1 request")
        return 0
    if not idle_requests:
        print("no idle row measured (include 0 in --actionable)")
        return 0
    print(f"TARGET MISSED: an idle poll cost {sorted(set(idle_requests))} requests (target: 1)")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
