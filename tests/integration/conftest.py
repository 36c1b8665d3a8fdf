"""Fixtures shared by the end-to-end tests."""
from __future__ import annotations

import pytest

from tests.integration.slack_server import RecordingWebhook


@pytest.fixture
def slack():
    """The Slack stand-in, recording what each test's alerts post."""
    with RecordingWebhook() as server:
        yield server
