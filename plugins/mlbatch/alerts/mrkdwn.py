"""Text from a run (reasons, stderr lines, ids) made inert in a Slack message.

Slack reads `&`, `<` and `>` as control characters (`<!channel>`, `<url|label>`), so they
are escaped as its docs say; code spans and blocks cannot hold a backtick run that would
close them early, so one is broken with a zero-width space.
"""
from __future__ import annotations

import re

_ZERO_WIDTH_SPACE = "\u200b"
_BACKTICK_RUN = re.compile(r"`(?=`)")


def escape(text: str) -> str:
    """`text` shown as written: Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """An inline code span that holds `text` and ends where it should."""
    return "`" + escape(text).replace("`", "\u02cb") + "`"


def code_block(text: str) -> str:
    """A ``` block that holds `text` whole: no backtick run inside can close it."""
    inner = _BACKTICK_RUN.sub("`" + _ZERO_WIDTH_SPACE, escape(text))
    if inner.startswith("`"):
        inner = _ZERO_WIDTH_SPACE + inner
    if inner.endswith("`"):
        inner += _ZERO_WIDTH_SPACE
    return f"```{inner}```"
