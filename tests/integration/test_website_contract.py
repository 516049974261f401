"""The website contract's version (website/contract.py): read from the table's columns, so a table the website
team owns is judged without any other grant; `khanza-sync setup --website` brings a table it made up to date in
place, and only prints the statements for a table someone else made."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from website import contract, schema, store


def test_version_follows_the_columns_step_by_step():
    every = {c.name for c in schema.registrations.columns}
    assert contract.found_version(every) == contract.CURRENT
    assert contract.found_version(every - {"no_reg"}) == 0  # a column of the first step missing
    assert contract.missing(every - {"synced_at", "nik"}) == ["nik", "synced_at"]  # in the contract's order
    assert all(step.columns for step in contract.STEPS)
    assert [step.version for step in contract.STEPS] == list(range(1, contract.CURRENT + 1))
    named = [name for step in contract.STEPS for name in step.columns]
    assert sorted(named) == sorted(every) and len(named) == len(set(named))  # each column in exactly one step


def _columns(engine):
    return {c["name"] for c in inspect(engine).get_columns(contract.TABLE)}


@pytest.mark.parametrize("website_url", ["sqlite", "postgresql", "mariadb"], indirect=True)
def test_setup_upgrades_its_own_table_in_place_and_leaves_another_s_alone(website_url):
    engine = store.make_engine(website_url)
    try:
        with engine.begin() as conn:  # a fresh start: nothing made by setup yet (the store is the test's own)
            conn.exec_driver_sql(f"DROP TABLE {contract.TABLE}")
            conn.exec_driver_sql("DROP TABLE IF EXISTS khanza_sync_contract")
        assert contract.setup(engine) == ["CREATE TABLE " + contract.TABLE]
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {contract.TABLE} (id, status) VALUES ('kept-1', 'pending')"))
            # an older release's table: the last column of the contract is not there yet
            conn.exec_driver_sql(f"ALTER TABLE {contract.TABLE} DROP COLUMN synced_at")
        assert contract.found_version(_columns(engine)) == 0
        done = contract.setup(engine)
        assert len(done) == 1 and done[0].startswith(f"ALTER TABLE {contract.TABLE} ADD COLUMN synced_at")
        assert contract.found_version(_columns(engine)) == contract.CURRENT
        assert contract.setup(engine) == []  # again: nothing to do
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT id, status FROM {contract.TABLE}")).all() == [("kept-1", "pending")]
            assert conn.execute(text("SELECT version FROM khanza_sync_contract")).scalar() == contract.CURRENT

        # The same old shape in a table the website team made: refused with the statements, nothing changed.
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE khanza_sync_contract")
            conn.exec_driver_sql(f"ALTER TABLE {contract.TABLE} DROP COLUMN synced_at")
        before = _columns(engine)
        with pytest.raises(contract.TableNotOurs) as refused:
            contract.setup(engine)
        assert "ADD COLUMN synced_at" in str(refused.value) and "docs/website.md" in str(refused.value)
        assert _columns(engine) == before and not inspect(engine).has_table("khanza_sync_contract")
        # what the website team is told to run does bring it up to date
        with engine.begin() as conn:
            for stmt in contract.upgrade_sql(engine.dialect.name, before):
                conn.exec_driver_sql(stmt)
        assert contract.found_version(_columns(engine)) == contract.CURRENT
        assert contract.setup(engine) == [] and not inspect(engine).has_table("khanza_sync_contract")
    finally:
        engine.dispose()
