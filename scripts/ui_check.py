"""Helpers for scripts/local_trial.sh: seed trial data, and check a flow run in the real Prefect UI.

    python scripts/ui_check.py seed
        (re)create the trial Khanza database (KHANZA_DB_NAME, default khanza_trial) on the project's private
        MariaDB from the demo fixture, and a website store (WEBSITE_DB_URL, default data/trial_website.db)
        with the demo's sample registrations (fake people) plus one that ends PATIENT_CONFLICT (its BPJS card is
        another sample patient's). Only databases Khanza Sync created are replaced.
    python scripts/ui_check.py screenshot --flow-run-id ID [--out artifacts/]
        wait for the run to finish, then save its Artifacts tab and each table artifact to artifacts/ (git-ignored).
    python scripts/ui_check.py tour [--code HOSPITAL_CODE] [--out docs/ui/]
        what the data team reads, as the README shows it (TOUR below): the runs list, a sync run's artifacts,
        queue-status, the two fix-one-registration forms, the alert automations.

Screenshots: Playwright (`pip install -e '.[ui]'`) driving Debian's chromium (`apt-get install chromium`), headless.

Reads PREFECT_API_URL (e.g. http://127.0.0.1:4250/api); the UI is the same host without /api.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def seed() -> None:
    """The trial's own data: KHANZA_DB_NAME (default khanza_trial) on the project's private MariaDB, and the
    website store WEBSITE_DB_URL (default data/trial_website.db), read from the environment only (never
    .env). Each is replaced only if Khanza Sync created it; otherwise one line says why and nothing changes."""
    from sqlalchemy import insert

    from khanza.setup import check_replaceable, create_demo_database, private_server_settings
    from khanza_sync import demo, ownership
    from website import store
    from website.schema import registrations

    settings = private_server_settings(os.environ.get("KHANZA_DB_NAME") or "khanza_trial")
    url = os.environ.get("WEBSITE_DB_URL") or f"sqlite:///{ROOT / 'data' / 'trial_website.db'}"
    check_replaceable(settings, settings.khanza_db_name)  # both refused before anything changes
    ownership.check_website_replaceable(url)
    create_demo_database(settings, settings.khanza_db_name, purpose="trial Khanza database")
    ownership.fresh_website_store(url, "trial website store")
    engine = store.make_engine(url)
    rows = demo.sample_registrations(datetime.now(settings.tz).date())
    with engine.begin() as conn:
        conn.execute(insert(registrations), rows + [conflicting(rows)])
    engine.dispose()
    print(f"seeded Khanza database {settings.khanza_db_name} on {settings.khanza_db_host}:{settings.khanza_db_port} "
          f"and the website store with sample registrations")


def conflicting(rows: list[dict]) -> dict:
    """A registration that ends PATIENT_CONFLICT: another NIK holding demo-002's BPJS card, submitted after it
    (the sync creates demo-002's patient first), for the resolve-patient-conflict form in the tour."""
    card_holder = next(r for r in rows if r["id"] == "demo-002")
    return {**card_holder, "id": "demo-009", "nik": "3310014107800099", "full_name": "Kartu Dipinjam",
            "phone": "0812-1111-0009", "created_at": card_holder["created_at"] + timedelta(minutes=1)}


def wait_for_run(api: str, flow_run_id: str, timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10).json()
        state = (run.get("state") or {}).get("type")
        if state in TERMINAL:
            return run
        if time.time() > deadline:
            raise SystemExit(f"flow run {flow_run_id} still {state} after {timeout:.0f}s (is the worker running?)")
        time.sleep(2)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    raise SystemExit("chromium not found: apt-get update && apt-get install -y chromium")


# What the data team looks at, in the order they do: (file name, what it shows). README "Reading a run in the UI"
# names these files; `tour` writes them.
TOUR = (
    ("runs.png", "the runs list: finished runs renamed with what happened"),
    ("sync_run_artifacts.png", "a sync run that did work: its Artifacts tab"),
    ("queue_status.png", "the hospital's queue-status artifact (latest version)"),
    ("requeue_form.png", "the requeue-registrations deployment's run form"),
    ("resolve_conflict_form.png", "the resolve-patient-conflict deployment's run form, its choices open"),
    ("automations.png", "the hospital's alert automations"),
)


class Browser:
    """Headless Debian chromium driven by Playwright (no browser download: executable_path), one page."""

    def __init__(self, width: int = 1600, height: int = 1000):
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"], headless=True)
        self.page = self._browser.new_page(viewport={"width": width, "height": height})

    def open(self, url: str, wait_text: str | None = None, timeout: float = 30) -> None:
        # The Prefect UI polls the API all the time: "networkidle" never comes, so wait for what must be shown.
        self.page.goto(url, wait_until="load")
        if wait_text:
            self.page.get_by_text(wait_text, exact=False).first.wait_for(timeout=timeout * 1000)
        self.page.wait_for_timeout(1500)  # the last panels render after their data arrives

    def tab(self, label: str) -> None:
        """Click one of the page's tabs (Prefect's UI draws them as `li.p-tab`, not ARIA tabs)."""
        self.page.locator("li.p-tab", has_text=label).first.click()

    def save(self, out: Path, full_page: bool = False) -> None:
        self.page.screenshot(path=str(out), full_page=full_page)
        if out.stat().st_size < 10_000:
            raise SystemExit(f"{out}: the page looks empty")
        print(f"saved {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  ({self.page.url})")

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()


def _api() -> tuple[str, str]:
    api = os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4250/api").rstrip("/")
    return api, api.removesuffix("/api")


def _post(api: str, path: str, body: dict) -> list[dict]:
    response = httpx.post(f"{api}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def _deployment_id(api: str, flow: str, code: str) -> str:
    response = httpx.get(f"{api}/deployments/name/{flow}/{flow}-{code}", timeout=10)
    if response.status_code == 404:
        raise SystemExit(f"deployment {flow}/{flow}-{code} not found: run `khanza-sync deploy` first")
    return response.json()["id"]


def tour(code: str, out_dir: Path) -> None:
    """Screenshots of what the data team reads (TOUR), from the server at PREFECT_API_URL, hospital `code`."""
    api, ui = _api()
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = _post(api, "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_DESC", "limit": 50,
                                            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}},
                                                          "tags": {"all_": [f"hospital:{code}"]}}})
    worked = next((r for r in runs if r["name"].startswith("sync ") and "nothing pending" not in r["name"]), None)
    if worked is None:
        raise SystemExit("no completed sync run that did work: run the trial (scripts/local_trial.sh) first")
    b = Browser()
    try:
        b.page.set_viewport_size({"width": 1600, "height": 1800})  # the list scrolls inside the page: show more
        b.open(f"{ui}/runs", wait_text=worked["name"])
        b.save(out_dir / "runs.png")
        b.page.set_viewport_size({"width": 1600, "height": 1000})
        b.open(f"{ui}/runs/flow-run/{worked['id']}", wait_text=worked["name"])
        b.tab("Artifacts")
        b.page.get_by_text("sync-outcomes-").first.wait_for(timeout=30_000)
        b.page.wait_for_timeout(1500)
        b.save(out_dir / "sync_run_artifacts.png", full_page=True)
        latest = _post(api, "/artifacts/latest/filter", {"artifacts": {"key": {"any_": [f"queue-status-{code}"]}}})
        if not latest:
            raise SystemExit(f"no queue-status-{code} artifact yet: run reconcile-queue-numbers once")
        b.open(f"{ui}/artifacts/artifact/{latest[0]['latest_id']}", wait_text="pending")
        b.save(out_dir / "queue_status.png", full_page=True)
        b.open(f"{ui}/deployments/deployment/{_deployment_id(api, 'requeue-registrations', code)}/run",
               wait_text="registration_ids")
        b.save(out_dir / "requeue_form.png", full_page=True)
        b.open(f"{ui}/deployments/deployment/{_deployment_id(api, 'resolve-patient-conflict', code)}/run",
               wait_text="decision")
        _open_choices(b.page, "decision")
        b.save(out_dir / "resolve_conflict_form.png")  # a full-page capture resizes the page and closes the list
        b.open(f"{ui}/automations", wait_text=f"khanza-sync {code}")
        b.save(out_dir / "automations.png", full_page=True)
    finally:
        b.close()


def _open_choices(page, field: str) -> None:
    """Open the select of a form field (its Literal choices), as staff would before choosing."""
    prop = page.locator(".schema-form-property",
                        has=page.locator(".schema-form-property__label", has_text=field)).last
    prop.locator("button.p-select-button__control").focus()
    page.keyboard.press("ArrowDown")  # headless, a synthetic click focuses Prefect's select but does not open it
    page.locator(".p-select-option__text").first.wait_for(timeout=5000)
    page.wait_for_timeout(500)


def shoot(flow_run_id: str, out_dir: Path, timeout: float) -> None:
    """One run's Artifacts tab and each of its table artifacts (the trial's --ui-check)."""
    api, ui = _api()
    run = wait_for_run(api, flow_run_id, timeout)
    print(f"flow run {run['name']}: {run['state']['type']} - {run['state'].get('message')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    b = Browser()
    try:
        b.open(f"{ui}/runs/flow-run/{flow_run_id}", wait_text=run["name"])
        b.tab("Artifacts")
        b.page.wait_for_timeout(2500)
        b.save(out_dir / "flow_run_artifacts.png", full_page=True)
        arts = _post(api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
        for art in arts:
            if art.get("type") == "table":
                b.open(f"{ui}/artifacts/artifact/{art['id']}", wait_text=art["key"])
                b.save(out_dir / f"artifact_{art['key']}.png", full_page=True)
    finally:
        b.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed")
    shot = sub.add_parser("screenshot")
    shot.add_argument("--flow-run-id", required=True)
    shot.add_argument("--out", type=Path, default=ROOT / "artifacts")
    shot.add_argument("--timeout", type=float, default=300)
    walk = sub.add_parser("tour", help="screenshots of what the data team reads: " + ", ".join(n for n, _ in TOUR))
    walk.add_argument("--code", default=os.environ.get("HOSPITAL_CODE", "default"), help="HOSPITAL_CODE")
    walk.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args(argv)
    if args.command == "seed":
        seed()
    elif args.command == "tour":
        tour(args.code, args.out)
    else:
        shoot(args.flow_run_id, args.out, args.timeout)


if __name__ == "__main__":
    main()
