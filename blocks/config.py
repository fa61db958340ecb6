"""Loading and registering the product's Prefect blocks and concurrency limits."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import Engine

from vidgen import stack

from vidgen.config import Paths
from vidgen.ledger import ledger_engine_for
from vidgen.providers.settings import ProviderSettings

SECRET_BLOCKS: dict[str, tuple[str, str]] = {
    # ProviderSettings field: (Secret block name, environment variable it is created from)
    "gemini_api_key": ("vidgen-gemini-api-key", "GEMINI_API_KEY"),
    "kie_api_key": ("vidgen-kie-api-key", "KIE_API_KEY"),
    "elevenlabs_api_key": ("vidgen-elevenlabs-api-key", "ELEVENLABS_API_KEY"),
    "token_key": ("vidgen-youtube-token-key", "VIDGEN_TOKEN_KEY"),
}
ENDPOINTS_BLOCK = "vidgen-provider-endpoints"
LEDGER_BLOCK = "vidgen-ledger"
ENDPOINT_ENV = {
    "gemini_base_url": "GEMINI_BASE_URL",
    "kie_base_url": "KIE_BASE_URL",
    "kie_upload_base_url": "KIE_UPLOAD_BASE_URL",
    "elevenlabs_base_url": "ELEVENLABS_BASE_URL",
    "youtube_base_url": "YOUTUBE_BASE_URL",
    "image_host": "VIDGEN_IMAGE_HOST",
}
LIMITS_FILE = Path(__file__).resolve().parent.parent / "deployments" / "limits.yaml"


class ProviderEndpoints(Block):
    """Where each provider's API lives: point them at a proxy or a local stand-in without code changes."""

    _block_type_name = "Vidgen Provider Endpoints"
    _block_type_slug = "vidgen-provider-endpoints"

    gemini_base_url: str | None = None
    kie_base_url: str = "https://api.kie.ai"
    kie_upload_base_url: str = "https://kieai.redpandaai.co"
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    youtube_base_url: str | None = None
    image_host: str = "kie"


class ConcurrencyConfig(BaseModel):
    class NotionRate(BaseModel):
        name: str = "notion-api"
        requests_per_second: float = Field(default=3, gt=0)

    tags: dict[str, int]
    notion_rate_limit: NotionRate = NotionRate()


def concurrency_config(path: Path = LIMITS_FILE) -> ConcurrencyConfig:
    return ConcurrencyConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def _load_block(block_cls: type[Block], name: str) -> Block | None:
    try:
        return block_cls.load(name)
    except Exception:  # not registered, or no Prefect API to ask: environment and defaults apply
        return None


@lru_cache(maxsize=1)
def provider_settings() -> ProviderSettings:
    """ProviderSettings from the environment, with unset secrets and endpoints filled from blocks."""
    settings = ProviderSettings.from_env()
    updates: dict[str, object] = {}
    for field, (block_name, env_name) in SECRET_BLOCKS.items():
        if not os.environ.get(env_name) and getattr(settings, field) is None:
            block = _load_block(Secret, block_name)
            if block is not None:
                updates[field] = SecretStr(block.get())
    endpoints = _load_block(ProviderEndpoints, ENDPOINTS_BLOCK)
    if endpoints is not None:
        for field, env_name in ENDPOINT_ENV.items():
            if not os.environ.get(env_name):
                updates[field] = getattr(endpoints, field)
    return settings.model_copy(update=updates)


@lru_cache(maxsize=1)
def ledger_engine() -> Engine:
    """The cost ledger's engine: VIDGEN_LEDGER_URL, else the `vidgen-ledger` connector block, else the
    embedded default (`vidgen.stack.ledger_url`)."""
    if not os.environ.get("VIDGEN_LEDGER_URL"):
        from prefect_sqlalchemy import SqlAlchemyConnector

        block = _load_block(SqlAlchemyConnector, LEDGER_BLOCK)
        if block is not None:
            return block.get_engine()
    return ledger_engine_for(stack.ledger_url(Paths.from_env()))


def register() -> list[str]:
    """Create or update every block and limit; returns one line per thing done (no secret values)."""
    from prefect.client.orchestration import get_client
    from prefect_sqlalchemy import SqlAlchemyConnector

    from blocks.automations import register_automations

    done: list[str] = []
    for _field, (block_name, env_name) in SECRET_BLOCKS.items():
        value = os.environ.get(env_name)
        if value:
            Secret(value=value).save(block_name, overwrite=True)
            done.append(f"secret block {block_name} <- ${env_name}")
        elif _load_block(Secret, block_name) is None:
            done.append(f"secret block {block_name}: not set (export {env_name} and run setup again to store it)")
    env_settings = ProviderSettings.from_env()
    ProviderEndpoints(**{field: getattr(env_settings, field) for field in ENDPOINT_ENV}).save(
        ENDPOINTS_BLOCK, overwrite=True
    )
    done.append(f"endpoints block {ENDPOINTS_BLOCK}")
    ledger_url = stack.ledger_url(Paths.from_env())
    ledger_engine_for(ledger_url).dispose()  # a SQLite ledger's folder exists before the block is used
    SqlAlchemyConnector(connection_info=ledger_url).save(LEDGER_BLOCK, overwrite=True)
    done.append(f"ledger block {LEDGER_BLOCK} -> {ledger_url.split('@')[-1]}")

    config = concurrency_config()
    with get_client(sync_client=True) as client:
        for tag, limit in config.tags.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=limit)
            done.append(f"tag concurrency limit {tag}={limit}")
        rate = config.notion_rate_limit
        # One slot that decays at N/s admits at most N requests in any second; N slots would let a
        # burst of N + (N-1) through (measured by scripts/bench_orchestration.py).
        client.upsert_global_concurrency_limit_by_name(rate.name, 1, slot_decay_per_second=rate.requests_per_second)
        done.append(f"rate limit {rate.name}={rate.requests_per_second}/s")
    done += register_automations()  # alerts and zombie-run detection (blocks/automations.py)
    provider_settings.cache_clear()
    ledger_engine.cache_clear()
    return done
