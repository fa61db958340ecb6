"""Prefect blocks: API keys as Secret blocks, provider endpoints, the ledger's SQL connection.

`vidgen setup` registers them; flows read them here. Environment variables win over blocks, so a
developer can point one shell at a stand-in without touching the shared configuration.
"""
