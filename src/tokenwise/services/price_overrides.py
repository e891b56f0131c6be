"""Prices per user: their own prices of some models, over the server's book (shipped, then the prices file).

The book a user's questions are priced with is `book_for(user_id)`: the server's book when they set no
price, else the server's book with their overrides merged on top (`usage.prices.merge`: an override
replaces the fields it names, the others keep the book's; a model the book lacks is added).

Books are cached per user and rebuilt when that user's overrides change: on this process at once, on
other replicas at their next question (the cache is keyed by the overrides' count and newest change,
one small query per question).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from tokenwise.db.database import Database
from tokenwise.db.tables import PriceOverrideRow, utcnow
from tokenwise.errors import InvalidInput, NotFound
from tokenwise.usage.prices import PriceList, merge

MAX_MODELS = 500  # overrides per user
# Entry fields with a column of their own; every other price field of an entry is kept in `extra`.
_COLUMNS = ("input", "cached_input", "output", "batch_discount", "provider", "source")
_ORIGIN = "user"
_CACHED_USERS = 1024

Fingerprint = tuple[int, Any]  # how many overrides, and the newest one's stored update time
_FINGERPRINT = "SELECT count(*), max(updated_at) FROM price_overrides WHERE user_id = :user_id"


class PriceOverrides:
    """Read and change one user's price overrides; the merged book their questions use."""

    def __init__(self, db: Database, base: PriceList) -> None:
        self.db, self.base = db, base
        self._direct = db.direct
        self._books: OrderedDict[str, tuple[Fingerprint, PriceList]] = OrderedDict()

    async def overrides(self, user_id: str) -> dict[str, dict[str, Any]]:
        """The user's overrides as prices.json model entries, by (lower-case) model name."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(PriceOverrideRow)
                .where(PriceOverrideRow.user_id == user_id)
                .order_by(PriceOverrideRow.model)
            )
            return {row.model: _entry(row) for row in rows}

    async def book_for(self, user_id: str) -> PriceList:
        """The price book of `user_id`: the server's, with their overrides on top."""
        # read at the start of every run: plain SQL, not the ORM (the fingerprint stays the stored text)
        async with self._direct.transaction() as tx:
            ((count, newest),) = await tx.fetch(_FINGERPRINT, {"user_id": user_id})
        if not count:
            self._books.pop(user_id, None)
            return self.base
        fingerprint: Fingerprint = (int(count), newest)
        cached = self._books.get(user_id)
        if cached is not None and cached[0] == fingerprint:
            self._books.move_to_end(user_id)
            return cached[1]
        book = self.merged(await self.overrides(user_id))
        self._books[user_id] = (fingerprint, book)
        while len(self._books) > _CACHED_USERS:
            self._books.popitem(last=False)
        return book

    def merged(self, overrides: Mapping[str, Mapping[str, Any]]) -> PriceList:
        """The server's book with `overrides` on top, each marked `"origin": "user"`."""
        if not overrides:
            return self.base
        document = merge(self.base.document, {"models": overrides}, "your price")
        for name in overrides:
            document["models"][name.lower()]["origin"] = _ORIGIN
        return PriceList(document, origin="merged")

    async def set(self, user_id: str, models: Mapping[str, Mapping[str, Any]]) -> None:
        """Set (or replace) the user's price of each model in `models`; other overrides stay."""
        entries = {name.strip().lower(): dict(entry) for name, entry in models.items()}
        self.merged(entries)  # raises InvalidInput on an entry the book could not price
        now = utcnow()
        async with self.db.session() as session:
            existing = {
                row.model: row
                for row in await session.scalars(
                    select(PriceOverrideRow).where(PriceOverrideRow.user_id == user_id)
                )
            }
            if len(existing.keys() | entries.keys()) > MAX_MODELS:
                raise InvalidInput(f"models: at most {MAX_MODELS} price overrides per user", field="models")
            for name, entry in entries.items():
                row = existing.get(name) or PriceOverrideRow(user_id=user_id, model=name)
                _fill(row, entry, now)
                if name not in existing:
                    session.add(row)
        self._books.pop(user_id, None)

    async def unset(self, user_id: str, model: str) -> None:
        """Remove the user's price of `model`: the server's book prices it again."""
        name = model.strip().lower()
        async with self.db.session() as session:
            row = await session.get(PriceOverrideRow, (user_id, name))
            if row is None:
                raise NotFound(f"no price override for {name}")
            await session.delete(row)
        self._books.pop(user_id, None)


def _entry(row: PriceOverrideRow) -> dict[str, Any]:
    entry = {name: getattr(row, name) for name in _COLUMNS}
    entry.update(row.extra or {})
    entry["as_of"] = row.updated_at.date().isoformat()
    return {k: v for k, v in entry.items() if v is not None}  # a field left out keeps the book's


def _fill(row: PriceOverrideRow, entry: Mapping[str, Any], now: datetime) -> None:
    for name in _COLUMNS:
        setattr(row, name, entry.get(name))
    row.extra = {k: v for k, v in entry.items() if k not in _COLUMNS} or None
    row.updated_at = now


__all__ = ["MAX_MODELS", "PriceOverrides"]
