"""A local Notion-API-compatible server (Notion-Version 2025-09-03) that unmodified notion-client talks to.

with LocalNotionServer(path) as server:
    client = notion_client.Client(auth=server.token, base_url=server.base_url)
"""

from vidgen.notion.server.runner import LocalNotionServer, serve_forever

__all__ = ["LocalNotionServer", "serve_forever"]
