"""Apply Alembic migrations programmatically (used by `tokenwise migrate`, `make run` and the tests)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema at `database_url` to `revision`; callable with or without a running event loop."""
    if database_url.startswith("sqlite"):
        Path(database_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    # The Alembic environment runs its own event loop, which cannot nest inside a running one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(database_url), revision).result()
