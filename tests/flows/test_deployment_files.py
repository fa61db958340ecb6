"""Every deployment file declares the poll the same way: one at a time, a poll due while one runs
dropped (CANCEL_NEW). With Prefect's default (ENQUEUE) a worker back after downtime would run every
poll it missed, one after another (issue 9: 20 minutes of load average 28)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

REPO = Path(__file__).resolve().parents[2]
FILES = [REPO / "prefect.yaml", *sorted((REPO / "deployments").glob("*.prefect.yaml"))]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_poll_runs_one_at_a_time_and_drops_late_runs(path: Path):
    deployments = {d["name"]: d for d in yaml.safe_load(path.read_text())["deployments"]}
    assert {"poll-notion", "produce-video"} <= set(deployments)
    limit = ConcurrencyLimitConfig(**deployments["poll-notion"]["concurrency_limit"])
    assert limit.limit == 1 and limit.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW
    assert "concurrency_limit" not in deployments["produce-video"], "videos are limited per provider tag, not per run"


def test_there_are_deployment_files_for_each_work_pool_type():
    assert {p.name for p in FILES} >= {"prefect.yaml", "docker.prefect.yaml", "kubernetes.prefect.yaml"}


def _pool_job_variables(name: str) -> dict:
    return yaml.safe_load((REPO / "deployments" / name).read_text())["deployments"][1]["work_pool"]["job_variables"]


def test_the_kubernetes_runs_get_what_the_docker_runs_get():
    """The Kubernetes file was never run; it stays the Docker file's twin, which is (tests/deployments):
    the same image and the same environment, except the token, which a Kubernetes Secret supplies."""
    docker, kubernetes = _pool_job_variables("docker.prefect.yaml"), _pool_job_variables("kubernetes.prefect.yaml")
    assert docker["image"] == kubernetes["image"] == "{{ $VIDGEN_IMAGE }}"
    assert set(docker["env"]) - {"NOTION_TOKEN"} == set(kubernetes["env"])
    assert all(docker["env"][key] == value for key, value in kubernetes["env"].items())
    assert docker["volumes"] == ["{{ $VIDGEN_DATA_VOLUME }}:/data"]
