"""`python -m website`: create the website tables at WEBSITE_DB_URL (same as `khanza-sync setup --website`,
without touching Khanza): online_registrations from website/schema.py, and its NOTIFY trigger on PostgreSQL."""
from __future__ import annotations

from khanza_sync.settings import load_settings
from website import store


def main() -> None:
    engine = store.make_engine(load_settings().website_db_url.get_secret_value())
    store.create_schema(engine)
    print(f"online_registrations ready ({engine.dialect.name})")


if __name__ == "__main__":
    main()
