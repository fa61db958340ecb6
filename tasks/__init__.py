"""Prefect tasks: thin wrappers over `vidgen`, each tagged with the service it calls."""
