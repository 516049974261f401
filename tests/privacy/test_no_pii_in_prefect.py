"""Run the sync flow over a few hundred fake registrations (valid and invalid), then scan everything the
Prefect server holds: log records, artifacts, flow runs (parameters, state messages), task runs, events,
and every text cell of the server's own database. No patient's NIK, name or phone number may be there.

A canary flow logs a NIK, a phone number and a name on purpose: the NIK and phone must arrive masked
(privacy.install works on Prefect's API handler) and the name must be found (the scan can see logs).
"""
from __future__ import annotations

import random
import re
import sqlite3
import string
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from prefect import flow, get_client, get_run_logger

from tests import support as root  # the shared test helpers (base_settings, ...)

RNG = random.Random(20261127)
SYLLABLES = ["zor", "bek", "quin", "tav", "lux", "mir", "dov", "kesh", "yul", "vran", "oph", "zet", "wim", "jax"]
CANARY_NIK = "3399887766554433"
CANARY_PHONE = "+62 899-1122-3344"
CANARY_NAME = "Qwertzuiop Kanarienvogel"


def fake_name() -> str:
    """Names no log line could contain by accident."""
    return " ".join("".join(RNG.choice(SYLLABLES) for _ in range(3)).capitalize() for _ in range(2))


def fake_phone() -> tuple[str, str]:
    subscriber = "8" + "".join(RNG.choice(string.digits) for _ in range(10))
    style = RNG.choice(["0{a}{b}{c}", "0{a}-{b}-{c}", "+62{a}{b}{c}", "+62 {a} {b} {c}", "62{a}{b}{c}", "{a}.{b}.{c}"])
    return style.format(a=subscriber[:3], b=subscriber[3:7], c=subscriber[7:]), "0" + subscriber


def fake_registrations(count: int) -> tuple[list[dict], list[dict]]:
    today = datetime.now(ZoneInfo("Asia/Jakarta")).date()
    rows, people = [], []
    pairs = [("penyakit-dalam", "dr-ahmad-sppd"), ("anak", "dr-citra-spa"), ("mata", "dr-eko-spm"),
             ("gigi", "drg-indra"), ("saraf", "dr-gunawan-spn")]
    for i in range(count):
        nik = "33" + "".join(RNG.choice(string.digits) for _ in range(14))
        phone, phone_norm = fake_phone()
        name = fake_name()
        poli, doctor = pairs[i % len(pairs)]
        row = root.registration(
            id=f"priv-{i:04d}", nik=nik, full_name=name, phone=phone, mother_name=fake_name(),
            address=f"Jl. {fake_name()} No. {i}", poliklinik=poli, doctor=doctor,
            visit_date=today + timedelta(days=1 + i % 20), payment="umum",
            created_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=10))
        kind = i % 10  # 40% invalid in assorted ways, some of them carrying identifiers in odd places
        if kind == 1:
            row["nik"] = nik[:10] + "AB" + nik[12:]
        elif kind == 2:
            row["phone"] = phone + "99999"
        elif kind == 3:
            row["poliklinik"] = f"{nik}"  # a NIK typed into the clinic field: UNKNOWN_POLI
        elif kind == 4:
            row["full_name"] = f"{name} '; DROP TABLE pasien; -- {nik}"
        elif kind == 5:
            row.update(payment="bpjs", bpjs_number=nik[:12])
        rows.append(row)
        people.append({"nik": nik, "name": name, "mother": row["mother_name"], "phone": phone,
                       "phone_norm": phone_norm, "bpjs": row.get("bpjs_number")})
    return rows, people


@flow(name="privacy-canary")
def canary_flow():
    get_run_logger().warning("canary patient %s phone %s name %s", CANARY_NIK, CANARY_PHONE, CANARY_NAME)


def _flush_logs() -> None:
    import logging

    from prefect.logging.handlers import APILogHandler

    for name in ("prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, APILogHandler):
                handler.flush()


def collect_prefect_texts() -> list[str]:
    """Everything the Prefect API returns about runs, logs, artifacts and events, as JSON text."""
    texts: list[str] = []
    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs(limit=200)
        assert flow_runs, "no flow runs on the server"
        for run in flow_runs:
            texts.append(run.model_dump_json())
            texts.append(repr(run.parameters))
        offset = 0
        while True:
            page = client.read_task_runs(limit=200, offset=offset)
            texts.extend(t.model_dump_json() for t in page)
            if len(page) < 200:
                break
            offset += 200
        offset = 0
        while True:
            page = client.read_logs(limit=200, offset=offset)
            texts.extend(log.message for log in page)
            if len(page) < 200:
                break
            offset += 200
        texts.extend(a.model_dump_json() for a in client.read_artifacts(limit=200))
        try:
            events = client.read_events(limit=200)
            texts.extend(e.model_dump_json() for e in events.events)
        except Exception:  # noqa: BLE001 - events are covered by the raw database scan below
            pass
    return texts


def collect_server_database_texts() -> list[str]:
    """Every text cell of the harness server's SQLite database (events, states, logs, artifacts...)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    url = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
    path = url.split("///", 1)[1]
    texts = []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                texts.extend(v if isinstance(v, str) else v.decode("utf-8", "replace")
                             for v in row if isinstance(v, (str, bytes)))
    finally:
        conn.close()
    return texts


def find_leaks(texts: list[str], people: list[dict]) -> list[str]:
    """Which kinds of identifiers appear (never the values: this report may be printed)."""
    haystack = "\n".join(texts)
    digits_only = re.sub(r"[\s\-.+()]", "", haystack)
    lowered = haystack.lower()
    leaks = []
    for i, p in enumerate(people):
        if p["nik"] in digits_only:
            leaks.append(f"person {i}: NIK")
        if p["bpjs"] and len(p["bpjs"]) >= 10 and p["bpjs"] in digits_only:
            leaks.append(f"person {i}: BPJS")
        if p["phone"] in haystack or p["phone_norm"] in digits_only or p["phone_norm"][1:] in digits_only:
            leaks.append(f"person {i}: phone")
        for token in (p["name"] + " " + p["mother"]).split():
            if token.lower() in lowered:
                leaks.append(f"person {i}: name")
                break
    return leaks


@pytest.fixture
def flow_env(monkeypatch, khanza, tmp_path):
    """Point the flow's settings (read from the environment, as in production) at the test databases."""
    url = root.new_website_store(f"sqlite:///{tmp_path / 'website.db'}")
    yield from root.flows_as(monkeypatch, tmp_path, url)


def test_no_patient_data_reaches_the_prefect_server(flow_env):
    from flows.sync_registrations import sync_registrations

    rows, people = fake_registrations(300)
    root.insert_registrations(flow_env, rows)

    root.completed(sync_registrations, batch_size=120)
    canary_flow()
    _flush_logs()

    outcome = root.website_rows(flow_env)
    assert set(outcome["status"]) == {"synced", "rejected"}
    assert (outcome["status"] == "synced").sum() >= 100 and (outcome["status"] == "rejected").sum() >= 80

    api_texts = collect_prefect_texts()
    db_texts = collect_server_database_texts()
    api_all = "\n".join(api_texts)

    # the scan is able to see what flows log, and the canary's identifiers arrive masked
    assert CANARY_NAME in api_all, "the canary log line did not reach the server: the scan proves nothing"
    assert CANARY_NIK not in api_all and "************4433" in api_all
    assert "3344" in api_all and "899-1122-3344" not in api_all
    assert "sync-summary-" in api_all, "the run's artifacts are not in the scan"

    leaks = find_leaks(api_texts, people)
    assert not leaks, f"patient data in Prefect's API: {leaks[:20]} ({len(leaks)} in all)"
    leaks = find_leaks(db_texts, people)
    assert not leaks, f"patient data in the Prefect server database: {leaks[:20]} ({len(leaks)} in all)"
