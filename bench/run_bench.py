"""Khanza Sync at hospital scale: the benchmark of issue 6.

    cd /work/main && .venv/bin/python -m bench.run_bench [--rebuild] [--backlog 10000]
        [--with-100k] [--naive-sample 100] [--profile]

1. builds (or reuses) `khanza_bench` (1,000,000 visits) and `khanza_bench_small` (10,000 visits);
2. fills a SQLite website store under bench/out/ with the backlog (7 days, half existing patients,
   10% BPJS, 5% invalid);
3. runs the real `flows.sync_registrations` flow over it in a fresh process per database, timing every
   stage, then a scheduled run with nothing pending;
4. runs the two references (database limit, naive loader) over the same valid registrations;
5. verifies correctness and prints the figures against the issue's targets.

Databases are reset to their built state after every run. Only counts and timings are printed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


from bench import backlog, references
from bench import build_khanza as B
from bench import common as C
from bench.verify import verify
from khanza_sync.settings import Settings

STAGE_ROWS = [("extract", "extract (claim from website)"), ("data_checks", "data checks (pandas + GX)"),
              ("map", "mapping (+ master data)"), ("gcl_acquire", "load: Prefect concurrency acquire"),
              ("load_batch", "load: khanza.registration.load_batch"), ("gcl_release", "load: concurrency release"),
              ("write_back", "write-back to website"), ("artifacts", "artifacts"), ("ensure_limit", "ensure GCL")]


def run_flow_child(database: str, website: Path, tag: str, profile: bool) -> dict:
    out = C.OUT / f"flow_{tag}.json"
    log = C.OUT / f"flow_{tag}.log"
    cmd = [sys.executable, "-m", "bench.run_flow", str(out)]
    if profile:
        cmd += ["--profile", str(C.OUT / f"flow_{tag}.prof")]
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, env=C.child_env(database, website), stdout=fh, stderr=subprocess.STDOUT,
                              cwd=C.ROOT)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"flow run failed ({tag}); see {log}")
    return json.loads(out.read_text())


def stage_table(r: dict, n: int) -> list[str]:
    wall = r["flow_wall_s"]
    lines = [f"    {'stage':40s} {'seconds':>8s} {'share':>6s} {'ms/reg':>7s} calls"]
    accounted = 0.0
    for key, label in STAGE_ROWS:
        s = r["stages"].get(key)
        if not s:
            continue
        accounted += s["total_s"]
        lines.append(f"    {label:40s} {s['total_s']:8.2f} {100 * s['total_s'] / wall:5.1f}% "
                     f"{1000 * s['total_s'] / n:7.2f} {s['calls']}")
    other = wall - accounted
    lines.append(f"    {'Prefect orchestration (task/flow runs)':40s} {other:8.2f} {100 * other / wall:5.1f}% "
                 f"{1000 * other / n:7.2f}")
    lines.append(f"    {'whole flow call':40s} {wall:8.2f} 100.0% {1000 * wall / n:7.2f}")
    return lines


def one_database(database: str, tag: str, rows, truths, n: int, profile: bool, log) -> dict:
    B.reset(database)
    website = C.website_db(tag)
    backlog.fill(website, rows)
    log(f"  flow on {database} ({n:,} pending) ...")
    r = run_flow_child(database, website, tag, profile)
    problems, counts = verify(database, website, truths, n)
    r["verify_problems"], r["verify_counts"] = problems, counts
    r["n"] = n
    B.reset(database)
    return r


def references_on(database: str, truths, naive_sample: int, log) -> dict:
    clock = C.hospital_now()
    B.reset(database)
    log(f"  database-limit reference on {database} ({len(truths):,} registrations) ...")
    limit = references.database_limit(database, truths, clock)
    B.reset(database)
    log(f"  naive loader on {database} ({naive_sample} registrations) ...")
    naive = references.naive_loader(database, truths[:naive_sample], clock)
    B.reset(database)
    return {"limit": limit, "naive": naive}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Khanza Sync benchmark (issue 6)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the bench databases")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--with-100k", action="store_true", help="also run a 100,000 backlog (memory flatness; slow)")
    parser.add_argument("--naive-sample", type=int, default=100, help="registrations for the naive loader")
    parser.add_argument("--profile", action="store_true", help="cProfile the big run (slower; profile in bench/out)")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--only-100k", action="store_true",
                        help="only the 100,000 backlog on the 1M-visit database (memory flatness), no references")
    args = parser.parse_args(argv)
    C.OUT.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def log(msg: str = "") -> None:
        print(msg, flush=True)

    def say(msg: str = "") -> None:
        lines.append(msg)
        print(msg, flush=True)

    t_all = time.perf_counter()
    C.write_mappings()
    meta_small = B.ensure(C.SMALL_DB, C.N_VISITS_SMALL, args.rebuild, log=log)
    meta_big = B.ensure(C.BIG_DB, C.N_VISITS_BIG, args.rebuild, log=log)
    if args.only_100k:
        rows100, truths100, _ = backlog.generate(100_000, C.hospital_today())
        r = one_database(C.BIG_DB, "big100k", rows100, truths100, 100_000, False, log)
        say(f"Flow on the 1,000,000-visit history, 100,000 backlog: {r['flow_message']}")
        say(f"  end to end {r['n'] / r['flow_wall_s']:,.0f} registrations/s ({r['flow_wall_s']:.1f} s); peak RSS "
            f"{r['peak_rss_mb']:.0f} MB (after imports + Prefect start {r['rss_before_flow_mb']:.0f} MB)")
        for line in stage_table(r, r["n"]):
            say(line)
        say(f"  correctness: {'OK' if not r['verify_problems'] else 'FAILED: ' + '; '.join(r['verify_problems'])} "
            f"{json.dumps(r['verify_counts'])}")
        (C.OUT / "report_100k.txt").write_text("\n".join(lines) + "\n")
        return 0 if not r["verify_problems"] else 1
    rows, truths, mix = backlog.generate(args.backlog, C.hospital_today())
    results = {"big": one_database(C.BIG_DB, "big", rows, truths, args.backlog, args.profile, log)}
    if not args.skip_small:
        results["small"] = one_database(C.SMALL_DB, "small", rows, truths, args.backlog, False, log)
    refs = {"big": references_on(C.BIG_DB, truths, args.naive_sample, log)}
    if not args.skip_small:
        refs["small"] = references_on(C.SMALL_DB, truths, args.naive_sample, log)
    if args.with_100k:
        rows100, truths100, _ = backlog.generate(100_000, C.hospital_today())
        results["big100k"] = one_database(C.BIG_DB, "big100k", rows100, truths100, 100_000, False, log)

    # ------------------------------------------------------------------ report
    big = results["big"]
    n = args.backlog
    created = big["verify_counts"]["created"]
    sizes = B.table_sizes(C.BIG_DB)
    say("")
    say("=" * 78)
    say("KHANZA SYNC BENCHMARK (issue 6)")
    say("=" * 78)
    say(f"Khanza {C.BIG_DB}: {C.N_PATIENTS:,} patients, {int(meta_big['n_visits']):,} visits to "
        f"{meta_big['history_end']}, built in {meta_big['build_seconds']} s; "
        + ", ".join(f"{t} {v[1]:.0f} MB" for t, v in sorted(sizes.items())))
    say(f"Khanza {C.SMALL_DB}: {int(meta_small['n_visits']):,} visits, built in {meta_small['build_seconds']} s")
    say(f"Backlog: {n:,} pending over 7 days: {mix['existing']:,} existing patients, {mix['new']:,} new, "
        f"{mix['bpjs']:,} BPJS, {mix['invalid']:,} invalid; batch size {Settings(_env_file=None).batch_size} (default)")
    say("")
    for key, title in [("big", "1,000,000-visit history"), ("small", "10,000-visit history"),
                       ("big100k", "1,000,000-visit history, 100,000 backlog")]:
        r = results.get(key)
        if not r:
            continue
        say(f"Flow on the {title}: {r['flow_message']}")
        say(f"  end to end {r['n'] / r['flow_wall_s']:,.0f} registrations/s ({r['flow_wall_s']:.1f} s for "
            f"{r['n']:,}); load stage {r['verify_counts']['created'] / r['stages']['load_batch']['total_s']:,.0f} "
            f"created/s; peak RSS {r['peak_rss_mb']:.0f} MB (after imports + Prefect start "
            f"{r['rss_before_flow_mb']:.0f} MB); Prefect start {r['prefect_start_s']:.1f} s + imports "
            f"{r['import_s']:.1f} s (excluded)")
        sql = r["sql"]
        say(f"  Khanza statements {sql.get('mysql', 0):,} ({sql.get('mysql', 0) / max(r['verify_counts']['created'], 1):.1f}"
            f" per created registration), Khanza commits {sql.get('mysql commits', 0):,}; website statements "
            f"{sql.get('sqlite', 0)}")
        lines_ = stage_table(r, r["n"])
        for line in lines_:
            say(line)
        say(f"  correctness: {'OK' if not r['verify_problems'] else 'FAILED: ' + '; '.join(r['verify_problems'])} "
            f"{json.dumps(r['verify_counts'])}")
        say("")

    say("References (same valid registrations, same database):")
    for key in ("big", "small"):
        ref = refs.get(key)
        if not ref:
            continue
        r = results[key]
        load_rate = r["verify_counts"]["created"] / r["stages"]["load_batch"]["total_s"]
        e2e = r["n"] / r["flow_wall_s"]
        lim, nai = ref["limit"], ref["naive"]
        say(f"  [{key}] database limit {lim['rate']:,.0f} reg/s ({lim['registrations']:,} in {lim['seconds']:.1f} s, "
            f"{lim['statements_per_registration']:.1f} statements + 1 commit each)")
        say(f"  [{key}] naive loader    {nai['rate']:,.1f} reg/s ({nai['registrations']} in {nai['seconds']:.1f} s; "
            f"{nai['max_plus_one_seconds'] / nai['registrations'] * 1000:.0f} ms per registration in the two "
            f"max()+1 scans)")
        say(f"  [{key}] pipeline load stage / database limit = {load_rate / lim['rate']:.2f}; "
            f"end to end / database limit = {e2e / lim['rate']:.2f}; pipeline end to end / naive = "
            f"{e2e / nai['rate']:.1f}x")
    say("")

    # ------------------------------------------------------------------ targets
    e2e = n / big["flow_wall_s"]
    load_rate = created / big["stages"]["load_batch"]["total_s"]
    limit_rate = refs["big"]["limit"]["rate"]
    targets = [
        ("end to end >= 1,000 reg/s (10k backlog, 1M history)", e2e >= 1000, f"{e2e:,.0f} reg/s ({e2e / 1000:.2f}x target)"),
        ("load stage >= 50% of database limit", load_rate >= 0.5 * limit_rate,
         f"{load_rate:,.0f} vs {limit_rate:,.0f} reg/s = {100 * load_rate / limit_rate:.0f}%"),
    ]
    if "small" in results:
        small = results["small"]
        growth = big["flow_wall_s"] / small["flow_wall_s"]
        lgrowth = big["stages"]["load_batch"]["total_s"] / small["stages"]["load_batch"]["total_s"]
        targets.append(("history growth <= 1.2x (1M vs 10k visits)", growth <= 1.2,
                        f"whole flow {growth:.2f}x, load stage {lgrowth:.2f}x"))
    targets.append(("peak memory < 400 MB (10k backlog)", big["peak_rss_mb"] < 400,
                    f"{big['peak_rss_mb']:.0f} MB peak RSS of the flow process "
                    f"({big['peak_rss_mb'] - big['rss_before_flow_mb']:.0f} MB above imports + Prefect)"))
    if "big100k" in results:
        r100 = results["big100k"]
        targets.append(("memory flat at 100,000 backlog", r100["peak_rss_mb"] <= big["peak_rss_mb"] * 1.1,
                        f"{r100['peak_rss_mb']:.0f} MB at 100k vs {big['peak_rss_mb']:.0f} MB at 10k"))
    body = big["empty_stages"]["flow_body"]["total_s"]
    targets.append(("empty scheduled run < 0.5 s (inside the flow)", body < 0.5,
                    f"flow body {body * 1000:.0f} ms; flow run Running->Completed "
                    f"{(big.get('empty_flow_run_s') or float('nan')) * 1000:.0f} ms; whole call incl. Prefect run "
                    f"creation {big['empty_wall_s']:.2f} s"))
    ok = all(not r["verify_problems"] for r in results.values())
    targets.append(("correctness at full speed (no duplicates, nothing lost)", ok,
                    "all checks passed" if ok else "see above"))
    say("Targets:")
    for name, met, detail in targets:
        say(f"  [{'MET   ' if met else 'MISSED'}] {name}: {detail}")
    say("")
    say(f"(benchmark wall time {time.perf_counter() - t_all:.0f} s; details in {C.OUT})")
    (C.OUT / "report.txt").write_text("\n".join(lines) + "\n")
    (C.OUT / "report.json").write_text(json.dumps({"results": results, "references": refs}, default=str, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
