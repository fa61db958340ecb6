"""The product's deployments, defined once in prefect.yaml and served from it by `vidgen serve`.

`prefect deploy --all` reads prefect.yaml for work pools; `vidgen serve` builds the same deployments
(names, descriptions, tags, schedules, concurrency) from the same file, so the two never drift.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"
POLL_DEPLOYMENT = "poll-notion"


def declared_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]


def _flow(entrypoint: str):
    file, _, name = entrypoint.partition(":")
    return getattr(importlib.import_module(file.removesuffix(".py").replace("/", ".")), name)


def _concurrency(value: int | dict[str, Any] | None) -> int | ConcurrencyLimitConfig | None:
    return ConcurrencyLimitConfig(**value) if isinstance(value, dict) else value


def served_flows(*, poll_interval: float | None = None) -> list[tuple[Flow[..., Any], dict[str, Any]]]:
    """prefect.yaml's deployments as `Runner.add_flow` takes them: each flow with its deployment's
    options; `poll_interval` overrides the poll's schedule."""
    served = []
    for spec in declared_deployments():
        interval = next((s["interval"] for s in spec.get("schedules", []) if "interval" in s), None)
        if spec["name"] == POLL_DEPLOYMENT and poll_interval is not None:
            interval = poll_interval
        options = {
            "name": spec["name"],
            "description": spec.get("description"),
            "tags": spec.get("tags", []),
            "parameters": spec.get("parameters") or {},
            "interval": interval,
            "concurrency_limit": _concurrency(spec.get("concurrency_limit")),
        }
        served.append((_flow(spec["entrypoint"]), options))
    return served
