"""Notion: the user's control panel. The gateway is the only code that talks to it."""
