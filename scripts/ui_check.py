"""Helpers for scripts/local_trial.sh: seed trial data, and check a flow run in the real Prefect UI.

    python scripts/ui_check.py seed
        (re)create the trial Khanza database (KHANZA_DB_NAME, default khanza_trial) on the project's private
        MariaDB from the demo fixture, and a website store (WEBSITE_DB_URL, default data/trial_website.db)
        with the demo's sample registrations (fake people). Only databases Khanza Sync created are replaced.
    python scripts/ui_check.py screenshot --flow-run-id ID [--out artifacts/]
        wait for the run to finish, then load its page in headless Chromium (Debian's `chromium`) and save
        screenshots of the run (Artifacts tab) and of its outcome table to artifacts/ (git-ignored).

Reads PREFECT_API_URL (e.g. http://127.0.0.1:4250/api); the UI is the same host without /api.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--window-size=1600,1100", "--virtual-time-budget=20000"]
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
    with engine.begin() as conn:
        conn.execute(insert(registrations), demo.sample_registrations(datetime.now(settings.tz).date()))
    engine.dispose()
    print(f"seeded Khanza database {settings.khanza_db_name} on {settings.khanza_db_host}:{settings.khanza_db_port} "
          f"and the website store with sample registrations")


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


def screenshot(url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="khanza-ui-") as profile:
        cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    if not out.exists() or out.stat().st_size < 10_000:
        raise SystemExit(f"no usable screenshot of {url}")
    print(f"saved {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  ({url})")


def screenshot_tab(url: str, tab: str, out: Path, settle: float = 6.0) -> None:
    """Load `url` in headless Chromium over the DevTools protocol, click the page's `tab`, save a PNG.
    (The run page keeps its tab in the route, but a cold load always opens on Logs.)"""
    import asyncio
    import base64
    import json

    import websockets

    async def drive(ws_url: str) -> bytes:
        async with websockets.connect(ws_url, max_size=50_000_000) as ws:
            counter = 0

            async def call(method, **params):
                nonlocal counter
                counter += 1
                await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
                while True:
                    msg = json.loads(await ws.recv())
                    if msg.get("id") == counter:
                        return msg.get("result", {})

            await call("Page.enable")
            await call("Emulation.setDeviceMetricsOverride", width=1600, height=1100, deviceScaleFactor=1, mobile=False)
            await call("Page.navigate", url=url)
            await asyncio.sleep(settle)
            # The deepest element whose text is exactly the tab's label, clicked like a user would.
            click = ("(() => { const m = [...document.querySelectorAll('body *')].filter("
                     f"e => e.textContent.trim() === {json.dumps(tab)}); const t = m[m.length - 1];"
                     " if (!t) return 'none'; const b = t.closest('button, [role=tab], a, li') || t;"
                     " b.dispatchEvent(new MouseEvent('click', {bubbles: true})); b.click && b.click();"
                     " return b.tagName + ' ' + m.length; })()")
            result = await call("Runtime.evaluate", expression=click, returnByValue=True)
            print("clicked:", result.get("result", {}).get("value"))
            await asyncio.sleep(settle / 2)
            shot = await call("Page.captureScreenshot", format="png")
            return base64.b64decode(shot["data"])

    with tempfile.TemporaryDirectory(prefix="khanza-ui-") as profile:
        port_file = Path(profile) / "DevToolsActivePort"
        proc = subprocess.Popen([chromium(), *CHROMIUM_FLAGS[:-1], f"--user-data-dir={profile}",
                                 "--remote-debugging-port=0", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while not port_file.exists() and time.time() < deadline:
                time.sleep(0.2)
            port = port_file.read_text().split()[0]
            targets = httpx.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
            page = next(t for t in targets if t["type"] == "page")
            out.write_bytes(asyncio.run(drive(page["webSocketDebuggerUrl"])))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"saved {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  ({url}, tab {tab})")


def shoot(flow_run_id: str, out_dir: Path, timeout: float) -> None:
    api = os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4250/api").rstrip("/")
    ui = api.removesuffix("/api")
    run = wait_for_run(api, flow_run_id, timeout)
    print(f"flow run {run['name']}: {run['state']['type']} - {run['state'].get('message')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    screenshot_tab(f"{ui}/runs/flow-run/{flow_run_id}", "Artifacts", out_dir / "flow_run_artifacts.png")
    arts = httpx.post(f"{api}/artifacts/filter", timeout=10,
                      json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).json()
    for art in arts:
        if art.get("type") == "table":
            screenshot(f"{ui}/artifacts/artifact/{art['id']}", out_dir / f"artifact_{art['key']}.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed")
    shot = sub.add_parser("screenshot")
    shot.add_argument("--flow-run-id", required=True)
    shot.add_argument("--out", type=Path, default=ROOT / "artifacts")
    shot.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    if args.command == "seed":
        seed()
    else:
        shoot(args.flow_run_id, args.out, args.timeout)


if __name__ == "__main__":
    main()
