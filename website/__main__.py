"""`python -m website`: create the online_registrations table at WEBSITE_DB_URL (defined in website/schema.py)."""
from __future__ import annotations

from khanza_sync.settings import get_settings
from website import store


def main() -> None:
    engine = store.make_engine(get_settings().website_db_url.get_secret_value())
    store.create_schema(engine)
    print(f"online_registrations ready ({engine.dialect.name})")


if __name__ == "__main__":
    main()
