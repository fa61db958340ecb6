"""The `receiver` fixture: a receiver already verified with the test token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from webhook_helpers import Receiver, make_receiver


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    """A receiver whose verification token TOKEN arrived and was accepted."""
    for made in make_receiver(tmp_path):
        assert made.verify().status_code == 200
        made.accept()
        yield made
