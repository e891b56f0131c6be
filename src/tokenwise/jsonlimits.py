"""JSON from clients, bounded in nesting depth before it is parsed.

CPython's json parser recurses once per level: about a thousand levels (2 KB of brackets) exhaust the
stack and raise RecursionError, which is no ValueError and so escaped every `except ValueError` as a bug
(1011 on a WebSocket, 500 on HTTP). The pre-scan here is linear in the text and costs nothing for
ordinary documents (fewer brackets than the limit are not scanned at all).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # far deeper than any document this server reads; far shallower than the stack
_SPECIAL = re.compile(r'[\[\]{}"\\]')


class TooDeep(ValueError):
    """A JSON document nested deeper than the limit (a ValueError, like any other invalid JSON)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels")
        self.limit = limit


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether `text` opens more than `limit` arrays/objects at once (not counting brackets in strings)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string, skip = 0, False, -1
    for match in _SPECIAL.finditer(text):
        at, char = match.start(), match.group()
        if at == skip:
            continue  # the character after a backslash in a string
        if in_string:
            if char == "\\":
                skip = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def loads(text: str | bytes, *, limit: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing documents nested deeper than `limit` with TooDeep (a ValueError)."""
    if isinstance(text, bytes | bytearray):
        text = text.decode()  # UnicodeDecodeError is a ValueError too
    if too_deep(text, limit):
        raise TooDeep(limit)
    try:
        return json.loads(text)
    except RecursionError:  # not reachable under the limit; kept so that no input can become a bug
        raise TooDeep(limit) from None
