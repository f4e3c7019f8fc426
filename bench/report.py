#!/usr/bin/env python3
# Ubuzima Sync — MIT licence.
# Turns bench/run.sh's JSON lines into the tables (stdout) and, with --write, docs/PERFORMANCE.md.
import datetime
import json
import os
import subprocess
import sys


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"


def machine():
    model = sh("lscpu | sed -n 's/^Model name:[ \\t]*//p' | head -1") or "?"
    mem_kb = sh("awk '/MemTotal/ {print $2}' /proc/meminfo")
    mem = f"{int(mem_kb) / 1024 / 1024:.1f} GB" if mem_kb.isdigit() else "?"
    commit = sh("git rev-parse --short HEAD") or "?"
    dirty = " + uncommitted changes" if sh("git status --porcelain --untracked-files=no") else ""
    return (f"- machine: {sh('nproc')} cores, {model}, {mem} RAM, {sh('uname -sr')}\n"
            f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
            f"- commit: {commit}{dirty}\n"
            f"- build: Release (-O2), gcc {sh('gcc -dumpfullversion')}, SQLite {sh('sqlite3 --version').split(' ')[0]}, "
            f"node {sh('node --version')}, pouchdb {pouch_version()}\n")


def pouch_version():
    try:
        with open(os.path.join(os.path.dirname(__file__), "node_modules", "pouchdb", "package.json")) as f:
            return json.load(f)["version"]
    except OSError:
        return "not installed"


def fmt(x, digits=0):
    if x is None:
        return "–"
    if isinstance(x, float) or digits:
        return f"{x:,.{digits}f}"
    return f"{x:,}"


def ratio(a, b, digits=1):
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.{digits}f}x"


def table(header, rows):
    out = "| " + " | ".join(header) + " |\n|" + "|".join("---" for _ in header) + "|\n"
    for r in rows:
        out += "| " + " | ".join(str(c) for c in r) + " |\n"
    return out


def main():
    path = sys.argv[1]
    write = sys.argv[sys.argv.index("--write") + 1] if "--write" in sys.argv else None
    all_rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    # The storage-backend runs (bench/postgres.sh) have their own section; every other table is
    # the embedded SQLite store's.
    rows = [r for r in all_rows if r.get("backend", "sqlite") == "sqlite"]
    pg_rows = [r for r in all_rows if r.get("backend") == "postgresql"]
    pg_by = lambda **kw: [r for r in pg_rows if all(r.get(k) == v for k, v in kw.items())]
    pg_one = lambda **kw: (pg_by(**kw) or [None])[0]
    by = lambda **kw: [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
    one = lambda **kw: (by(**kw) or [None])[0]
    md = ""

    lw = by(bench="local_writes")
    md += "### Local writes (rows/s; library = row + field versions + outbox entry)\n\n"
    md += table(["synchronous", "rows per transaction", "rows", "raw SQLite", "library", "library / raw",
                 "bytes on disk per row raw / library"],
                [[r["synchronous"], r["rows_per_tx"], fmt(r["rows"]), fmt(r["raw_rows_per_s"]),
                  fmt(r["lib_rows_per_s"]), f"{r['ratio']:.2f}",
                  f"{r['raw_bytes_per_row']:.0f} / {r['lib_bytes_per_row']:.0f}" if "lib_bytes_per_row" in r else "n/a"]
                 for r in lw])

    sizes = sorted({r["n"] for r in by(bench="sync")})
    md += "\n### Initial sync over loopback (ours: real server + CurlTransport; PouchDB: pouchdb 9 ↔ express-pouchdb)\n\n"
    sync_rows = []
    for n in sizes:
        for d in ("push", "pull"):
            o = one(bench="sync", n=n, direction=d)
            p = one(bench="pouchdb_sync", n=n, direction=d)
            so = one(bench="server_rss", n=n, system="ours", direction=d)
            sp = one(bench="server_rss", n=n, system="pouchdb", direction=d)
            if not o:
                continue
            g = lambda r, k: r.get(k) if r else None
            sync_rows.append([
                fmt(n), "device → server" if d == "push" else "server → new device",
                fmt(o["records_per_s"]), fmt(g(p, "records_per_s")), ratio(o["records_per_s"], g(p, "records_per_s")),
                f"{o['seconds']:.2f} / {fmt(g(p, 'seconds'), 2)}",
                f"{o['up_bytes_per_record']:.0f} / {o['down_bytes_per_record']:.0f}",
                f"{fmt(g(p, 'up_bytes_per_record'))} / {fmt(g(p, 'down_bytes_per_record'))}",
                ratio(o["up_bytes"] + o["down_bytes"], (g(p, "up_bytes") or 0) + (g(p, "down_bytes") or 0), 2)
                if p else "–",
                f"{o['http_requests']} / {fmt(g(p, 'http_requests'))}",
                f"{o['client_peak_rss_kb'] / 1024:.0f} / {fmt(g(p, 'client_peak_rss_kb') and g(p, 'client_peak_rss_kb') / 1024)}",
                f"{fmt(g(so, 'kb') and g(so, 'kb') / 1024)} / {fmt(g(sp, 'kb') and g(sp, 'kb') / 1024)}",
            ])
    md += table(["N", "direction", "ours rec/s", "PouchDB rec/s", "ours / PouchDB speed", "seconds ours / PouchDB",
                 "ours bytes/rec up / down", "PouchDB bytes/rec up / down", "ours / PouchDB bytes",
                 "HTTP requests ours / PouchDB", "client peak RSS MB ours / PouchDB",
                 "server peak RSS MB ours / PouchDB"], sync_rows)
    gen = by(bench="generate")
    if gen:
        md += f"\nRecords: {gen[0]['avg_record_json_bytes']:.0f} bytes of JSON fields on average (assessment " \
              "findings, needs, skill-transfer sessions, 1 assessment per 50). Bytes are counted on the wire " \
              "(HTTP headers + bodies, after gzip) by a counting TCP proxy in each client process; pull counts include " \
              "the server's reference data (seeds). Requests include login (ours) / database checks (PouchDB).\n"

    md += "\n### No-op sync (nothing changed)\n\n"
    md += table(["N synced before", "HTTP requests", "bytes up", "bytes down", "ms"],
                [[fmt(r["n"]), r["http_requests"], r["up_bytes"], r["down_bytes"], f"{r['seconds'] * 1000:.1f}"]
                 for r in by(bench="noop_sync")])

    md += "\n### Server under load (separate load process; each device pushes 20 records, then pulls until caught up)\n\n"
    loads = by(bench="load")
    md += table(["devices", "requests", "requests/s", "records/s", "request p50 ms", "request p99 ms",
                 "device sync p50 ms", "device sync p99 ms", "errors", "server peak RSS MB"],
                [[r["devices"], r["requests"], fmt(r["requests_per_s"]), fmt(r["records_per_s"]),
                  f"{r['request_p50_ms']:.1f}", f"{r['request_p99_ms']:.1f}", f"{r['sync_p50_ms']:.1f}",
                  f"{r['sync_p99_ms']:.1f}", r["errors"],
                  fmt((one(bench="server_rss", devices=r["devices"]) or {}).get("kb", 0) / 1024)] for r in loads])

    tls = {r["label"]: r for r in by(bench="tls")}
    if tls:
        md += "\n### TLS (same server build; cpprest and Beast listeners; ECDSA P-256 certificate; one client process)\n\n"
        base = tls.get("plain-cpprest")
        rel = lambda r, k: ratio(r[k], base[k], 2) if base else "–"
        md += table(["variant", "new connections/s (full handshake)", "new connections/s (resumed)",
                     "keep-alive requests/s", "vs plain", "push rec/s", "vs plain", "pull rec/s", "vs plain"],
                    [[label, fmt(r["new_conns_per_s"]), fmt(r["resumed_conns_per_s"]), fmt(r["keepalive_req_per_s"]),
                      rel(r, "keepalive_req_per_s"), fmt(r["push_rec_per_s"]), rel(r, "push_rec_per_s"),
                      fmt(r["pull_rec_per_s"]), rel(r, "pull_rec_per_s")] for label, r in sorted(tls.items())])
        md += "\nOver plain HTTP the two connection columns measure TCP set-up only. Keep-alive requests are no-op " \
              "`POST /v1/sync` calls on one connection; push and pull move the bench records through the client library.\n"

    login = one(bench="login")
    if login:
        md += "\n### Login at the production password cost (PBKDF2-HMAC-SHA256, 600,000 iterations; medians of " \
              f"{login['samples']})\n\n"
        md += table(["known user, wrong password ms", "unknown user ms", "unknown / known", "successful login ms"],
                    [[f"{login['known_wrong_ms']:.0f}", f"{login['unknown_ms']:.0f}",
                      f"{login['unknown_over_known']:.2f}", f"{login['success_ms']:.0f}"]])
        md += "\nThe same work either way (tests/unit/server/auth_test.cpp counts the PBKDF2 iterations); before, an " \
              "unknown username was answered 28–47x faster (a 1-iteration dummy hash).\n"

    if pg_rows:
        md += "\n### Storage backends: embedded SQLite vs PostgreSQL 15 (same server build, same machine; " \
              "PostgreSQL in a throw-away cluster with fsync and synchronous_commit on, as durable as SQLite's " \
              "synchronous=FULL)\n\n"
        backend_rows = []
        for n in sorted({r["n"] for r in pg_by(bench="sync")}):
            for d in ("push", "pull"):
                o, p = one(bench="sync", n=n, direction=d), pg_one(bench="sync", n=n, direction=d)
                if not p:
                    continue
                so = one(bench="server_rss", n=n, system="ours", direction=d)
                sp = pg_one(bench="server_rss", n=n, system="ours", direction=d)
                backend_rows.append([fmt(n), "device → server" if d == "push" else "server → new device",
                                     fmt(o and o["records_per_s"]), fmt(p["records_per_s"]),
                                     ratio(p["records_per_s"], o and o["records_per_s"], 2),
                                     f"{fmt(so and so['kb'] / 1024)} / {fmt(sp and sp['kb'] / 1024)}"])
        md += table(["N", "direction", "SQLite rec/s", "PostgreSQL rec/s", "PostgreSQL / SQLite",
                     "server peak RSS MB SQLite / PostgreSQL"], backend_rows)
        sizes_pg = pg_by(bench="store_size")
        if sizes_pg:
            md += "\nPostgreSQL database size after the push: " + ", ".join(
                f"N={r['n']:,}: {r['kb'] / 1024:.0f} MB" for r in sizes_pg) + ".\n"
        md += "\nLoad (each device pushes 20 records, then pulls until caught up; with two server processes the " \
              "devices alternate between them):\n\n"
        load_rows = []
        for r in by(bench="load"):
            dv = r["devices"]
            p1 = pg_one(bench="load", devices=dv, servers=1)
            p2 = pg_one(bench="load", devices=dv, servers=2)
            cell = lambda x: f"{fmt(x['requests_per_s'])} ({x['request_p99_ms']:.0f} ms, {x['errors']} errors)" if x else "–"
            load_rows.append([dv, cell(r), cell(p1), cell(p2),
                              ratio(p1 and p1["requests_per_s"], r["requests_per_s"], 2),
                              ratio(p2 and p2["requests_per_s"], p1 and p1["requests_per_s"], 2)])
        md += table(["devices", "SQLite requests/s (p99, errors)", "PostgreSQL, 1 process", "PostgreSQL, 2 processes",
                     "PostgreSQL 1 / SQLite", "2 processes / 1"], load_rows)

    # Targets of issue 4, checked against these figures.
    checks = []
    for r in lw:
        checks.append((f"local writes >= 0.5x raw SQLite ({r['synchronous']}, {r['rows_per_tx']}/tx)",
                       r["ratio"] >= 0.5, f"{r['ratio']:.2f}x"))
    big = max(sizes) if sizes else None
    for d in ("push", "pull"):
        o, p = one(bench="sync", n=big, direction=d), one(bench="pouchdb_sync", n=big, direction=d)
        if o and p:
            sp = o["records_per_s"] / p["records_per_s"]
            by_ = (o["up_bytes"] + o["down_bytes"]) / max(1, p["up_bytes"] + p["down_bytes"])
            checks.append((f"{d} N={big:,} >= 10x faster than PouchDB", sp >= 10, f"{sp:.1f}x"))
            checks.append((f"{d} N={big:,} <= 0.5x PouchDB's bytes", by_ <= 0.5, f"{by_:.2f}x"))
    o = one(bench="sync", n=big, direction="pull")
    if o:
        checks.append((f"client peak RSS < 64 MB pulling N={big:,}", o["client_peak_rss_kb"] < 64 * 1024,
                       f"{o['client_peak_rss_kb'] / 1024:.0f} MB"))
    for r in by(bench="noop_sync"):
        checks.append((f"no-op sync is 1 request < 1 KB each way (N={r['n']:,})",
                       r["http_requests"] == 1 and r["up_bytes"] < 1024 and r["down_bytes"] < 1024,
                       f"{r['http_requests']} req, {r['up_bytes']} B up, {r['down_bytes']} B down"))
    for r in loads:
        checks.append((f"{r['devices']} concurrent devices: 0 errors, request p99 < 1 s",
                       r["errors"] == 0 and r["request_p99_ms"] < 1000,
                       f"{r['errors']} errors, p99 {r['request_p99_ms']:.0f} ms"))
    if login:
        checks.append(("unknown usernames cost the same as known ones (within 20%)",
                       0.8 <= login["unknown_over_known"] <= 1.25, f"{login['unknown_over_known']:.2f}x"))
    md += "\n### Targets\n\n" + table(["target", "met", "measured"],
                                      [[t, "yes" if ok else "**no**", m] for t, ok, m in checks])
    print(md)

    if write:
        notes_path = os.path.join(os.path.dirname(__file__), "performance_notes.md")
        notes = open(notes_path).read() if os.path.exists(notes_path) else ""
        with open(write, "w") as f:
            f.write("# Performance\n\nGenerated by `bash bench/run.sh` (do not edit the tables by hand; the "
                    "analysis below comes from `bench/performance_notes.md`).\n\n")
            f.write(machine() + "\n" + md + "\n" + notes)
        print(f"wrote {write}")


if __name__ == "__main__":
    main()
