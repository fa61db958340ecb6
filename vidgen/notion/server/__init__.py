"""A local Notion-API-compatible server (Notion-Version 2025-09-03) that unmodified notion-client talks to.

with LocalNotionServer(path) as server:
    client = notion_client.Client(auth=server.token, base_url=server.base_url)
"""

from vidgen.notion.server.app import API_VERSION, create_app
from vidgen.notion.server.ratelimit import TokenBucket
from vidgen.notion.server.runner import LocalNotionServer, serve_forever

DEFAULT_RATE_LIMIT = 3.0  # Notion's documented average requests per second per integration

__all__ = ["API_VERSION", "DEFAULT_RATE_LIMIT", "LocalNotionServer", "TokenBucket", "create_app", "serve_forever"]
