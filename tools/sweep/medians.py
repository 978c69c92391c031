#!/usr/bin/env python3
"""Medians of tools/sweep/run's raw results: medians.csv, table.md and the
gnuplot data files (single-<server>.dat, cluster.dat) in the output folder
given as the only argument."""

import csv
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
raw = os.path.join(out, "raw")

COLUMNS = [
    ("rss_kib", "RSS per idle subscribed connection", "KiB", 1),
    ("cpu_us_connect", "server CPU per connect", "µs", 0),
    ("connects_per_sec", "connect + welcome + subscribe rate", "/s", -2),
    ("lat_p50_ms", "publish→receive p50, paced", "ms", 1),
    ("lat_p99_ms", "publish→receive p99, paced", "ms", 1),
    ("fanout_p99_ms", "fan-out completion p99, paced", "ms", 1),
    ("paced_cpu_us_delivery", "server CPU per delivery, paced", "µs", 2),
    ("sat_deliveries_per_sec", "deliveries/s, back to back", "/s", -1),
    ("sat_lat_p50_ms", "publish→receive p50, back to back", "ms", 0),
    ("sat_lat_p99_ms", "publish→receive p99, back to back", "ms", 0),
    ("sat_cpu_us_delivery", "server CPU per delivery, back to back", "µs", 2),
]


LOST = "lost"


def load(path):
    try:
        with open(path) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def per(num, den, scale=1.0):
    return num * scale / den if num is not None and den else None


def single_figures(paced, sat):
    f = {}
    if paced and paced.get("connected"):
        c = paced["connected"]
        f["rss_kib"] = per(paced.get("rss_per_conn_bytes"), 1024)
        f["cpu_us_connect"] = per(paced.get("server_cpu_connect_seconds"), c, 1e6)
        f["connects_per_sec"] = paced.get("connects_per_sec")
        if paced.get("latency_ms"):
            f["lat_p50_ms"] = paced["latency_ms"]["p50"]
            f["lat_p99_ms"] = paced["latency_ms"]["p99"]
            f["fanout_p99_ms"] = paced["fanout_ms"]["p99"]
            f["paced_cpu_us_delivery"] = per(paced.get("server_cpu_publish_seconds"), paced.get("delivered"), 1e6)
    if sat and sat.get("delivered", 0) < sat.get("expected", 0):
        # Lost deliveries (a server closed slow clients): no figure, and
        # the table marks the run.
        for k in ("sat_deliveries_per_sec", "sat_lat_p50_ms", "sat_lat_p99_ms", "sat_cpu_us_delivery"):
            f[k] = LOST
    elif sat and sat.get("latency_ms"):
        f["sat_deliveries_per_sec"] = sat.get("deliveries_per_sec")
        f["sat_lat_p50_ms"] = sat["latency_ms"]["p50"]
        f["sat_lat_p99_ms"] = sat["latency_ms"]["p99"]
        f["sat_cpu_us_delivery"] = per(sat.get("server_cpu_publish_seconds"), sat.get("delivered"), 1e6)
    return f


def cluster_figures(d):
    """One cluster run's figures: memory and CPU summed over the nodes and
    divided by their connections (per node, then), rates and latencies
    from the merged result."""
    nodes = [load(p) for p in sorted(glob.glob(os.path.join(d, "node-*.json")))]
    merged = load(os.path.join(d, "merged.json"))
    if not merged or not nodes or any(n is None for n in nodes):
        return None
    conns = sum(n["connected"] for n in nodes)
    rss = sum((n.get("rss_after_kib", 0) - n.get("rss_before_kib", 0)) for n in nodes)
    f = {
        "connected": conns,
        "rss_kib": per(rss, conns),
        "rss_kib_nodes": [per(n.get("rss_after_kib", 0) - n.get("rss_before_kib", 0), n["connected"]) for n in nodes],
        "cpu_us_connect": per(sum(n.get("server_cpu_connect_seconds", 0) for n in nodes), conns, 1e6),
        "cpu_us_connect_nodes": [per(n.get("server_cpu_connect_seconds", 0), n["connected"], 1e6) for n in nodes],
        "connects_per_sec": merged.get("connects_per_sec"),
        "deliveries_per_sec": merged.get("deliveries_per_sec"),
        "delivered": merged.get("delivered"),
        "expected": merged.get("expected"),
        "cpu_us_delivery": per(sum(n.get("server_cpu_publish_seconds", 0) for n in nodes), merged.get("delivered"), 1e6),
    }
    if merged.get("latency_ms"):
        f["lat_p50_ms"] = merged["latency_ms"]["p50"]
        f["lat_p99_ms"] = merged["latency_ms"]["p99"]
        f["fanout_p99_ms"] = merged["fanout_ms"]["p99"]
    return f


def med(values):
    v = [x for x in values if x is not None and x != LOST]
    return statistics.median(v) if v else None


def fmt(x, digits):
    if x is None:
        return "–"
    if x == LOST:
        return "lost"
    if digits < 0:  # thousands, -1: none after the point, -2: one
        return f"{x / 1000:.{-digits - 1}f}k"
    return f"{x:.{digits}f}"


def cell(runs, key, digits):
    vals = [r.get(key) for r in runs]
    m = med(vals)
    if m is None:
        return "–"
    return f"{fmt(m, digits)} [{' '.join(fmt(v, digits) for v in vals)}]"


# Single node.
single = {}  # (server, n) -> list of figures per run
for path in glob.glob(os.path.join(raw, "paced-*.json")) + glob.glob(os.path.join(raw, "sat-*.json")):
    m = re.match(r"(paced|sat)-(\w+)-(\d+)-(\d+)\.json$", os.path.basename(path))
    if not m:
        continue
    single.setdefault((m.group(2), int(m.group(3))), {}).setdefault(int(m.group(4)), {})[m.group(1)] = load(path)
rows = {}
for (server, n), runs in single.items():
    rows[(server, n)] = [single_figures(r.get("paced"), r.get("sat")) for _, r in sorted(runs.items())]

cluster = {}
for d in glob.glob(os.path.join(raw, "cluster-*-*")):
    m = re.match(r"cluster-(\w+)-(\d+)$", os.path.basename(d))
    if m:
        cluster.setdefault(m.group(1), []).append(cluster_figures(d))

with open(os.path.join(out, "medians.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["setup", "server", "clients"] + [c[0] for c in COLUMNS])
    for (server, n) in sorted(rows):
        w.writerow(["single", server, n] + [med(r.get(c[0]) for r in rows[(server, n)]) for c in COLUMNS])
    for mode, runs in sorted(cluster.items()):
        runs = [r for r in runs if r]
        if not runs:
            continue
        n = runs[0]["connected"]
        fig = {k: med(r.get(k) for r in runs) for k in ("rss_kib", "cpu_us_connect", "connects_per_sec", "lat_p50_ms", "lat_p99_ms", "fanout_p99_ms")}
        if mode == "paced":
            fig["paced_cpu_us_delivery"] = med(r.get("cpu_us_delivery") for r in runs)
        else:
            fig["sat_deliveries_per_sec"] = med(r.get("deliveries_per_sec") for r in runs)
            fig["sat_cpu_us_delivery"] = med(r.get("cpu_us_delivery") for r in runs)
            fig["sat_lat_p50_ms"], fig["sat_lat_p99_ms"] = fig.pop("lat_p50_ms"), fig.pop("lat_p99_ms")
        w.writerow(["cluster-" + mode, "cablehub", n] + [fig.get(c[0]) for c in COLUMNS])

# gnuplot data: one file per server, by clients.
for server in sorted({s for s, _ in rows}):
    with open(os.path.join(out, f"single-{server}.dat"), "w") as f:
        f.write("# clients " + " ".join(c[0] for c in COLUMNS) + "\n")
        for n in sorted(n for s, n in rows if s == server):
            vals = [med(r.get(c[0]) for r in rows[(server, n)]) for c in COLUMNS]
            f.write(f"{n} " + " ".join("NaN" if v is None else f"{v:.6g}" for v in vals) + "\n")
with open(os.path.join(out, "cluster.dat"), "w") as f:
    f.write("# clients " + " ".join(c[0] for c in COLUMNS) + " (cluster, per node for RSS and CPU)\n")
    with open(os.path.join(out, "medians.csv")) as m:
        for r in csv.DictReader(m):
            if r["setup"].startswith("cluster-"):
                f.write(f"# {r['setup']}\n" + r["clients"] + " " + " ".join(r[c[0]] or "NaN" for c in COLUMNS) + "\n\n\n")

# Markdown: one table per point, medians with the runs in brackets.
with open(os.path.join(out, "table.md"), "w") as f:
    for n in sorted({n for _, n in rows}):
        ac, ch = rows.get(("anycable", n), []), rows.get(("cablehub", n), [])
        f.write(f"\n**{n:,} clients, one node**\n\n| Figure | AnyCable 1.6.16 | Cablehub | Cablehub / AnyCable |\n|---|---|---|---|\n")
        for key, name, unit, digits in COLUMNS:
            a, c = med(r.get(key) for r in ac), med(r.get(key) for r in ch)
            ratio = f"{c / a:.2f}" if a and c else "–"
            f.write(f"| {name} ({unit}) | {cell(ac, key, digits) if ac else '–'} | {cell(ch, key, digits)} | {ratio} |\n")
    for mode, runs in sorted(cluster.items()):
        runs = [r for r in runs if r]
        if not runs:
            continue
        f.write(f"\n**Cluster, {mode}: {runs[0]['connected']:,} clients over {len(runs[0]['rss_kib_nodes'])} nodes**\n\n| Figure | Cablehub |\n|---|---|\n")
        for key, name, digits in [
            ("rss_kib", "RSS per connection, all nodes (KiB)", 1),
            ("cpu_us_connect", "server CPU per connect, all nodes (µs)", 0),
            ("connects_per_sec", "connect rate, all processes (/s)", -2),
            ("deliveries_per_sec", "deliveries/s, all processes", -1),
            ("lat_p50_ms", "publish→receive p50 (ms)", 1),
            ("lat_p99_ms", "publish→receive p99 (ms)", 1),
            ("fanout_p99_ms", "fan-out completion p99 (ms)", 1),
            ("cpu_us_delivery", "server CPU per delivery, all nodes (µs)", 2),
        ]:
            f.write(f"| {name} | {cell(runs, key, digits)} |\n")
        for r in runs:
            f.write(f"\nrun: RSS KiB/conn by node {[round(x, 1) for x in r['rss_kib_nodes']]}, CPU µs/connect by node {[round(x) for x in r['cpu_us_connect_nodes']]}, delivered {r['delivered']}/{r['expected']}\n")
print(open(os.path.join(out, "table.md")).read())
