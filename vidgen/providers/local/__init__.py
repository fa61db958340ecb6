"""Providers that run offline on this machine, free: they make real media for demos and tests."""
