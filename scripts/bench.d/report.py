#!/usr/bin/env python3
"""Renders the results of scripts/bench as one Markdown table, with issue 4's targets.

    report.py RESULTS_FILE

RESULTS_FILE has one `key value` per line (values may contain spaces for `note`); a missing key means that
measurement did not run, shown as `n/a`. `slow_json` names the JSON file written by slow_streams.py.
"""
import json
import sys


def load(path):
    values = {}
    notes = []
    with open(path) as file:
        for line in file:
            line = line.rstrip("\n")
            if not line:
                continue
            key, _, value = line.partition(" ")
            if key == "note":
                notes.append(value)
            else:
                values[key] = value
    return values, notes


class Results:
    def __init__(self, values):
        self.values = values

    def num(self, key):
        value = self.values.get(key)
        if value in (None, "", "failed"):
            return None
        try:
            return float(value)
        except ValueError:
            return None

    def text(self, key, default=None):
        return self.values.get(key, default)


def fmt_rps(value):
    if value is None:
        return "n/a"
    return f"{value:,.0f}"


def fmt(value, digits=1, suffix=""):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(value):
    return "n/a" if value is None else f"{value:.2f}×"


def verdict(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "**not met**"


def mb(kb):
    return None if kb is None else kb * 1024 / 1e6


def main():
    values, notes = load(sys.argv[1])
    r = Results(values)
    rows = []

    def row(figure, direct, nginx, proxy, proxy_vs_nginx, target, met):
        rows.append((figure, direct, nginx, proxy, proxy_vs_nginx, target, verdict(met) if target else ""))

    # 1. POST /api/generate at 16 and 64 connections.
    for conns in (16, 64):
        d, n, p = (r.num(f"gen{conns}_{t}") for t in ("direct", "nginx", "proxy"))
        q = ratio(p, n)
        row(f"1. POST /api/generate, {conns} conns, req/s", fmt_rps(d), fmt_rps(n), fmt_rps(p), fmt_ratio(q),
            "≥ 1.0× nginx", None if q is None else q >= 1.0)

    # 2. One connection: p50 and added p50.
    d, n, p = (r.num(f"lat1_p50_us_{t}") for t in ("direct", "nginx", "proxy"))
    row("2. POST /api/generate, 1 conn, p50 latency", fmt(d, 0, " µs"), fmt(n, 0, " µs"), fmt(p, 0, " µs"),
        fmt_ratio(ratio(p, n)), "", None)
    added_n = None if n is None or d is None else n - d
    added_p = None if p is None or d is None else p - d
    row("2. same, added p50 over direct", "—", fmt(added_n, 0, " µs"), fmt(added_p, 0, " µs"),
        fmt_ratio(ratio(added_p, added_n)), "≤ nginx's added",
        None if added_n is None or added_p is None else added_p <= added_n)
    d, n, p = (r.num(f"lat1_rps_{t}") for t in ("direct", "nginx", "proxy"))
    row("2. same, req/s", fmt_rps(d), fmt_rps(n), fmt_rps(p), fmt_ratio(ratio(p, n)), "", None)

    # 3. SSE with usage injected and withheld.
    d, n, p = (r.num(f"sse16_{t}") for t in ("direct", "nginx", "proxy"))
    q = ratio(p, n)
    row("3. SSE /v1/chat/completions (usage injected + withheld), 16 conns, req/s", fmt_rps(d), fmt_rps(n),
        fmt_rps(p), fmt_ratio(q), "≥ 0.9× nginx", None if q is None else q >= 0.9)

    # 4. GET pass-through.
    d, n, p = (r.num(f"tags16_{t}") for t in ("direct", "nginx", "proxy"))
    q = ratio(p, n)
    row("4. GET /api/tags pass-through, 16 conns, req/s", fmt_rps(d), fmt_rps(n), fmt_rps(p), fmt_ratio(q),
        "≥ 1.0× nginx", None if q is None else q >= 1.0)

    # 5. CPU per streamed chunk, and the wall time of that stream.
    lines = r.num("stream_lines")
    runs = int(r.num("stream_runs") or 1)
    median = f", median of {runs} runs" if runs > 1 else ""
    n, p = r.num("cpu_chunk_us_nginx"), r.num("cpu_chunk_us_proxy")
    row(f"5. CPU per streamed chunk (a {int(lines or 0):,}-line stream from the simulator, user+sys / lines{median})",
        "—", fmt(n, 2, " µs"), fmt(p, 2, " µs"), fmt_ratio(ratio(p, n)), "≤ 1.5 µs", None if p is None else p <= 1.5)
    d, n, p = (r.num(f"stream_wall_s_{t}") for t in ("direct", "nginx", "proxy"))
    row(f"5. same stream, wall time{median}", fmt(d, 2, " s"), fmt(n, 2, " s"), fmt(p, 2, " s"),
        fmt_ratio(ratio(p, n)), "", None)

    # 6. Idle RSS.
    # nginx: master + worker of the proxy_pass instance.
    n_start, n_after = mb(r.num("rss_start_kb_nginx")), mb(r.num("rss_after_kb_nginx"))
    start, after = mb(r.num("rss_start_kb_proxy")), mb(r.num("rss_after_kb_proxy"))
    row("6. idle RSS after start (nginx: master + worker)", "—", fmt(n_start, 1, " MB"), fmt(start, 1, " MB"),
        fmt_ratio(ratio(start, n_start)), "≤ 12 MB", None if start is None else start <= 12.0)
    row("6. idle RSS after the loads", "—", fmt(n_after, 1, " MB"), fmt(after, 1, " MB"),
        fmt_ratio(ratio(after, n_after)), "≤ 12 MB", None if after is None else after <= 12.0)

    # 7. Concurrent slow streams.
    slow_path = r.text("slow_json")
    slow = None
    if slow_path:
        try:
            with open(slow_path) as file:
                slow = json.load(file)
        except (OSError, ValueError):
            slow = None
    if slow is None:
        row("7. concurrent slow streams", "—", "—", "failed to run", "", "all bytes, counters exact, RSS ≤ 60 MB, 0 errors",
            None)
    else:
        peak = mb(slow["peak_rss_kb"])
        seconds = r.text("slow_seconds", "?")
        met = (slow["ok"] == slow["streams"] and slow["errors"] == 0 and slow["counters_exact"]
               and peak is not None and peak <= 60.0)
        cell = (f"{slow['ok']:,}/{slow['streams']:,} complete (peak {slow['peak_open']:,} open), "
                f"counters {'exact' if slow['counters_exact'] else 'WRONG'}, peak RSS {peak:.1f} MB, "
                f"{slow['errors']} errors")
        row(f"7. {slow['streams']:,} concurrent slow streams (a token every {r.text('slow_delay_ms', '100')} ms "
            f"for {seconds} s)", "—", "—", cell, "", "all bytes, counters exact, RSS ≤ 60 MB, 0 errors", met)

    # 8. Connection sweep.
    sweep = [int(c) for c in r.text("sweep_conns", "").split(",") if c]
    lowest = {}
    beyond_peak = {}
    for target in ("nginx", "proxy"):
        figures = [r.num(f"sweep{c}_{target}") for c in sweep]
        if figures and all(f is not None for f in figures):
            peak = max(figures)
            lowest[target] = min(figures) / peak * 100
            # A cliff is a drop as connections grow past the peak; 1 connection is latency-bound for everyone.
            beyond_peak[target] = min(figures[figures.index(peak):]) / peak * 100
    for c in sweep:
        n, p = r.num(f"sweep{c}_nginx"), r.num(f"sweep{c}_proxy")
        row(f"8. sweep: POST /api/generate, {c} conn{'' if c == 1 else 's'}, req/s", "—", fmt_rps(n), fmt_rps(p), fmt_ratio(ratio(p, n)),
            "", None)
    p = lowest.get("proxy")
    row("8. sweep: lowest req/s as % of peak (1 to 1,000 conns)", "—", fmt(lowest.get("nginx"), 0, " %"),
        fmt(p, 0, " %"), "", "≥ 80 %", None if p is None else p >= 80.0)
    p = beyond_peak.get("proxy")
    row("8. sweep: lowest req/s beyond the peak as % of peak (the cliff)", "—", fmt(beyond_peak.get("nginx"), 0, " %"),
        fmt(p, 0, " %"), "", "(≥ 80 %, read as \"no cliff\")", None if p is None else p >= 80.0)

    header = ("figure", "direct", "nginx proxy_pass", "this proxy", "proxy / nginx", "issue-4 target", "target")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["--:"] * 4 + ["---", "---"]) + "|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    if slow is not None and slow["error_samples"]:
        notes.append("slow streams: " + "; ".join(slow["error_samples"]))
    if slow is not None and not slow["counters_exact"]:
        notes.append(
            f"slow streams counters: requests {slow['requests_total']} (expected {slow['expected']['requests']}), "
            f"prompt {slow['prompt_tokens_total']} (expected {slow['expected']['prompt']}), completion "
            f"{slow['completion_tokens_total']} (expected {slow['expected']['completion']}), active after "
            f"{slow['active_after']}")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")


if __name__ == "__main__":
    main()
