"""JSON from clients, bounded in nesting depth before it is parsed.

CPython's json parser recurses once per level: about a thousand levels (2 KB of brackets) exhaust the
stack and raise RecursionError, which is no ValueError and so escaped every `except ValueError` as a bug
(1011 on a WebSocket, 500 on HTTP). The pre-scan here is linear in the text, builds nothing of the
document and costs nothing for ordinary documents (fewer brackets than the limit are not scanned at all).
It reads bytes as well as text, so that REST bodies are checked before they are decoded (web/limits.py).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64  # far deeper than any document this server reads; far shallower than the stack
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*(?:"|\Z)')  # once escapes are gone; an unterminated one runs to the end
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_BLOCK = 1 << 16


class TooDeep(ValueError):
    """A JSON document nested deeper than the limit (a ValueError, like any other invalid JSON)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels")
        self.limit = limit


def too_deep(text: str | bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether `text` opens more than `limit` arrays/objects at once (not counting brackets in strings).

    Every step is a C loop over the bytes (about 15 ms a MiB; a 16 MiB body of nothing but brackets,
    the worst case, about 1 s): escapes, then everything but quotes and brackets, then strings are
    removed, and the depth is a running sum over what is left. Nothing of the document is built.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b"\\" in data:
        # A run of backslashes is pairs of escaped backslashes and maybe one escaping the next byte:
        # dropping the pairs and then every escaped quote leaves the string boundaries as they were.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Two adjacent quotes enclose no bracket, whether they open and close one string or close one and
    # open the next: dropping them leaves the brackets outside strings as they were.
    data = data.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in data:
        data = _STRING.sub(b"", data)
    signs = data.translate(_SIGNS)  # +1 for an opening bracket, -1 (0xff as a signed byte) for a closing one
    view, depth = memoryview(signs).cast("b"), 0
    for start in range(0, len(signs), _BLOCK):  # in blocks, so that a deep prefix is found early
        if max(accumulate(view[start : start + _BLOCK], initial=depth)) > limit:
            return True
        block = signs[start : start + _BLOCK]
        depth += block.count(1) - block.count(0xFF)
    return False


def loads(text: str | bytes, *, limit: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing documents nested deeper than `limit` with TooDeep (a ValueError)."""
    if too_deep(text, limit):
        raise TooDeep(limit)
    if isinstance(text, bytes | bytearray):
        text = text.decode()  # UnicodeDecodeError is a ValueError too
    try:
        return json.loads(text)
    except RecursionError:  # not reachable under the limit; kept so that no input can become a bug
        raise TooDeep(limit) from None
