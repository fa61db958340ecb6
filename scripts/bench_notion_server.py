#!/usr/bin/env python
"""Latency of the local Notion server's data source query over a large table, through notion-client.

Seeds N pages (default 1,000) shaped like Video Pipeline rows, then times, over HTTP with an unmodified
notion-client:

* an idle poll: a compound filter + two sorts that matches a handful of rows,
* one full page of 100 rows (the most Notion returns per request),
* a full paginated scan of every row,
* the first query after a restart (cold cache: every page decoded from SQLite).

Target: the idle poll answers well under 100 ms (median); exit status 1 if the median is ≥ 100 ms.

    uv run python scripts/bench_notion_server.py [--pages 1000] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import notion_client
from notion_client.helpers import collect_paginated_api

from vidgen.notion.server import LocalNotionServer

SCHEMA: dict[str, Any] = {
    "Title": {"title": {}},
    "Channel": {"select": {"options": [{"name": f"channel-{i}"} for i in range(5)]}},
    "Topic": {"rich_text": {}},
    "Status": {"select": {"options": [{"name": s} for s in ("Draft", "Queued", "Done", "Error")]}},
    "Priority": {"select": {"options": [{"name": p} for p in ("High", "Normal", "Low")]}},
    "Cost": {"number": {"format": "dollar"}},
    "Updated": {"date": {}},
    "Done": {"checkbox": {}},
    "Video URL": {"url": {}},
    "Created": {"created_time": {}},
}
POLL_FILTER = {
    "and": [
        {"property": "Status", "select": {"equals": "Queued"}},
        {"property": "Done", "checkbox": {"equals": False}},
    ]
}
POLL_SORTS = [
    {"property": "Priority", "direction": "ascending"},
    {"timestamp": "created_time", "direction": "ascending"},
]


def row(i: int) -> dict[str, Any]:
    return {
        "Title": {"title": [{"text": {"content": f"Video {i}: a reasonably long working title"}}]},
        "Channel": {"select": {"name": f"channel-{i % 5}"}},
        "Topic": {"rich_text": [{"text": {"content": "A topic description of moderate length. " * 4}}]},
        "Status": {"select": {"name": "Queued" if i % 200 == 0 else "Done"}},
        "Priority": {"select": {"name": ("High", "Normal", "Low")[i % 3]}},
        "Cost": {"number": round(i * 0.37, 2)},
        "Updated": {"date": {"start": "2025-01-02T10:00:00.000Z"}},
        "Done": {"checkbox": False},
        "Video URL": {"url": f"https://example.com/v/{i}"},
    }


def timed(repeats: int, call: Callable[[], Any]) -> tuple[list[float], Any]:
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples, result


def report(label: str, samples: list[float], detail: str) -> float:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(f"{label:<28} median {median:7.1f} ms   p95 {p95:7.1f} ms   {detail}")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.sqlite"
        with LocalNotionServer(store) as server:
            client = notion_client.Client(auth=server.token, base_url=server.base_url)
            database = client.databases.create(
                parent={"type": "workspace", "workspace": True}, initial_data_source={"properties": SCHEMA}
            )
            ds_id = database["data_sources"][0]["id"]
            start = time.perf_counter()
            for i in range(args.pages):
                client.pages.create(parent={"data_source_id": ds_id}, properties=row(i))
            seed_s = time.perf_counter() - start
            print(f"seeded {args.pages} pages in {seed_s:.1f} s ({seed_s / args.pages * 1000:.1f} ms per create)")

            samples, poll = timed(
                args.repeats, lambda: client.data_sources.query(ds_id, filter=POLL_FILTER, sorts=POLL_SORTS)
            )
            poll_median = report("idle poll (filter + sorts)", samples, f"{len(poll['results'])} rows")
            samples, page = timed(args.repeats, lambda: client.data_sources.query(ds_id, page_size=100))
            report("one page of 100 rows", samples, f"{len(page['results'])} rows")
            samples, everything = timed(
                max(3, args.repeats // 10),
                lambda: collect_paginated_api(client.data_sources.query, data_source_id=ds_id),
            )
            report("full paginated scan", samples, f"{len(everything)} rows")
        with LocalNotionServer(store) as server:
            client = notion_client.Client(auth=server.token, base_url=server.base_url)
            samples, _ = timed(1, lambda: client.data_sources.query(ds_id, filter=POLL_FILTER, sorts=POLL_SORTS))
            report("first poll after restart", samples, "cold cache")
    target_met = poll_median < 100
    print(f"target (idle poll median < 100 ms): {'met' if target_met else 'MISSED'}")
    return 0 if target_met else 1


if __name__ == "__main__":
    sys.exit(main())
