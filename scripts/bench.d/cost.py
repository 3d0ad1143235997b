#!/usr/bin/env python3
"""Helpers of scripts/cost: loopback clients, readiness, callgrind output reading, the Markdown report.

    cost.py ports N                      N free TCP ports on 127.0.0.1, space-separated
    cost.py wait-listen PORT PID SECS    waits until PORT is in LISTEN state (read from /proc/net/tcp, so the
                                         measured process never sees a probe connection); 1 if PID dies first
    cost.py stream PORT PATH TOKENS DELAY_MS
                                         one streaming request (/api/generate: NDJSON; /v1/chat/completions: SSE,
                                         no stream_options) through PORT, checked: every token, the final event,
                                         and for SSE no usage chunk (the proxy withholds it from this client)
    cost.py requests PORT KIND COUNT [DELAY_MS]
                                         COUNT sequential requests over one keep-alive connection, each checked;
                                         KIND: tags (GET /api/tags), generate (non-streaming POST /api/generate),
                                         chat (streaming POST /api/chat of 10 tokens, DELAY_MS apart, default 1)
    cost.py summary CALLGRIND_OUT        `instructions N` and `allocations N` (calls of malloc, calloc, realloc,
                                         posix_memalign, aligned_alloc, memalign, under any glibc alias)
    cost.py top SHORT_OUT LONG_OUT UNITS N
                                         the N functions whose inclusive instructions grow most from SHORT_OUT to
                                         LONG_OUT, divided by UNITS (the extra chunks): where the per-chunk cost goes
    cost.py report RESULTS               the Markdown table of scripts/cost
    cost.py check RESULTS THRESHOLDS     compares the per-unit figures of RESULTS with the committed maxima in
                                         THRESHOLDS (JSON, see Benchmarks/Thresholds/cost.json); exit 3 when one
                                         exceeds its maximum by more than the tolerance

Every socket has a timeout, so a stuck proxy fails the run instead of hanging it.
"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

TIMEOUT = 120  # s per socket operation; callgrind makes the proxy ~50x slower

ALLOCATORS = {
    "malloc", "__libc_malloc", "__GI___libc_malloc",
    "calloc", "__libc_calloc", "__GI___libc_calloc",
    "realloc", "__libc_realloc", "__GI___libc_realloc",
    "posix_memalign", "__posix_memalign", "__libc_posix_memalign",
    "aligned_alloc", "__libc_aligned_alloc",
    "memalign", "__libc_memalign", "__GI___libc_memalign",
}

# The libc wrappers a socket read goes through (NIO: read; nginx: recv). Their calls per chunk show whether each
# chunk really arrived in a read of its own: a proxy too slow for the token delay reads several at once, which
# makes its per-chunk cost look smaller than it is.
READS = {"read", "__libc_read", "__GI___libc_read", "recv", "__libc_recv", "__GI___libc_recv", "readv",
         "recvmsg", "__libc_recvmsg", "recvfrom", "__libc_recvfrom"}


def fail(message):
    print(f"cost.py: {message}", file=sys.stderr)
    sys.exit(1)


# --- Ports and readiness --------------------------------------------------------------------------------------

def ports(count):
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in sockets))
    for s in sockets:
        s.close()


def listening(port):
    wanted = f"0100007F:{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as file:
                next(file)
                for line in file:
                    fields = line.split()
                    # st 0A = LISTEN
                    if fields[3] == "0A" and (fields[1] == wanted or fields[1].endswith(f":{port:04X}")):
                        return True
        except FileNotFoundError:
            continue
    return False


def wait_listen(port, pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if listening(port):
            return 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 1
        time.sleep(0.1)
    return 1


# --- Clients --------------------------------------------------------------------------------------------------

def connection(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)


def stream(port, path, tokens, delay_ms):
    headers = {"Content-Type": "application/json", "X-Sim-Tokens": str(tokens),
               "X-Sim-Token-Delay-Ms": str(delay_ms)}
    if path == "/api/generate":
        body = {"model": "cost", "prompt": "hi"}
    elif path == "/v1/chat/completions":
        body = {"model": "cost", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    else:
        fail(f"unknown stream path {path}")
    conn = connection(port)
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status != 200:
        fail(f"{path}: status {response.status}: {data[:200]!r}")
    if path == "/api/generate":
        lines = data.decode().splitlines()
        if len(lines) != tokens + 1 or not json.loads(lines[-1]).get("done"):
            fail(f"{path}: {len(lines)} lines, expected {tokens + 1} ending with done:true")
    else:
        events = [e for e in data.decode().split("\n\n") if e.strip()]
        payloads = [e[len("data: "):] for e in events]
        if payloads[-1] != "[DONE]":
            fail(f"{path}: the stream does not end with data: [DONE]")
        chunks = [json.loads(p) for p in payloads[:-1]]
        content = sum(1 for c in chunks if c.get("choices") and c["choices"][0].get("delta", {}).get("content"))
        if content != tokens:
            fail(f"{path}: {content} content chunks, expected {tokens}")
        if any("usage" in c for c in chunks):
            fail(f"{path}: a usage chunk reached a client that did not ask for it")


def requests(port, kind, count, delay_ms):
    conn = connection(port)
    for index in range(count):
        if kind == "tags":
            conn.request("GET", "/api/tags")
        elif kind == "generate":
            conn.request("POST", "/api/generate", body='{"model":"cost","prompt":"hi","stream":false}',
                         headers={"Content-Type": "application/json", "X-Sim-Tokens": "10"})
        elif kind == "chat":
            conn.request("POST", "/api/chat",
                         body='{"model":"cost","messages":[{"role":"user","content":"hi"}]}',
                         headers={"Content-Type": "application/json", "X-Sim-Tokens": "10",
                                  "X-Sim-Token-Delay-Ms": str(delay_ms)})
        else:
            fail(f"unknown request kind {kind}")
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            fail(f"{kind} request {index}: status {response.status}: {data[:200]!r}")
        if response.will_close:
            fail(f"{kind} request {index}: the connection was not kept alive")
        if kind == "tags":
            json.loads(data)
        elif kind == "generate":
            if not json.loads(data).get("done"):
                fail(f"{kind} request {index}: no done:true")
        else:
            lines = data.decode().splitlines()
            if len(lines) != 11 or not json.loads(lines[-1]).get("done"):
                fail(f"{kind} request {index}: {len(lines)} lines, expected 11 ending with done:true")
    conn.close()


# --- Callgrind output -----------------------------------------------------------------------------------------

NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def parse(path):
    """(total Ir, {function: self Ir}, {function: inclusive Ir}, {function: calls received})."""
    names = {}

    def name_of(text):
        match = NAME.match(text)
        if not match:
            return text
        ident, name = match.groups()
        if name is not None:
            names[ident] = name
        return names.get(ident, f"({ident})")

    self_cost, inclusive_calls, calls = {}, {}, {}
    total = None
    function = callee = None
    pending_calls = False
    with open(path, errors="replace") as file:
        for line in file:
            line = line.rstrip("\n")
            if not line:
                continue
            first = line[0]
            if first.isdigit() or first in "+-*":
                fields = line.split()
                cost = int(fields[1]) if len(fields) > 1 else 0
                if pending_calls:
                    if callee != function:
                        inclusive_calls[function] = inclusive_calls.get(function, 0) + cost
                    pending_calls = False
                else:
                    self_cost[function] = self_cost.get(function, 0) + cost
                continue
            key, _, value = line.partition("=")
            if key == "fn":
                function = name_of(value)
            elif key == "cfn":
                callee = name_of(value)
            elif key == "calls":
                calls[callee] = calls.get(callee, 0) + int(value.split()[0])
                pending_calls = True
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    if total is None:
        total = sum(self_cost.values())
    inclusive = {fn: self_cost.get(fn, 0) + inclusive_calls.get(fn, 0)
                 for fn in set(self_cost) | set(inclusive_calls)}
    return total, self_cost, inclusive, calls


# The response inspector's entry point (mangled): its inclusive cost is the inspection of a chunk, whatever the
# framing around it costs.
INSPECTION = re.compile(r"ResponseInspectorV7inspecty7NIOCore10ByteBufferV")


def summary(path):
    total, _, inclusive, calls = parse(path)
    allocations = sum(count for name, count in calls.items() if name in ALLOCATORS)
    reads = sum(count for name, count in calls.items() if name in READS)
    inspection = sum(cost for name, cost in inclusive.items() if INSPECTION.search(name))
    print(f"instructions {total}")
    print(f"allocations {allocations}")
    print(f"reads {reads}")
    print(f"inspection {inspection}")


def demangle(names):
    tool = shutil.which("swift-demangle") or ("/opt/swift/usr/bin/swift-demangle"
                                              if os.path.exists("/opt/swift/usr/bin/swift-demangle") else None)
    if not tool:
        return names
    try:
        out = subprocess.run([tool, "--simplified", "--compact"], input="\n".join(names) + "\n",
                             capture_output=True, text=True, timeout=60).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return names
    return out if len(out) == len(names) else names


def top(short_path, long_path, units, count):
    """Two tables: the largest inclusive costs per unit below the event loop's own frames (rows above 95 % of
    the total are the frames every chunk passes through: thread start, run loop, selector), and the largest
    self costs per unit."""
    total_short, short_self, short_incl, short_calls = parse(short_path)
    total_long, long_self, long_incl, long_calls = parse(long_path)
    total = (total_long - total_short) / units

    def rows(long_costs, short_costs, limit):
        table = sorted((((long_costs.get(fn, 0) - short_costs.get(fn, 0)) / units,
                         (long_incl.get(fn, 0) - short_incl.get(fn, 0)) / units,
                         (long_self.get(fn, 0) - short_self.get(fn, 0)) / units,
                         (long_calls.get(fn, 0) - short_calls.get(fn, 0)) / units, fn)
                        for fn in long_costs), reverse=True)
        return [row for row in table if row[0] <= limit][:count]

    print(f"total: {total:,.0f} instructions per unit")
    for title, chosen in (("inclusive", rows(long_incl, short_incl, 0.95 * total)),
                          ("self", rows(long_self, short_self, float("inf")))):
        pretty = demangle([row[4] for row in chosen])
        print()
        print(f"| {title}: inclusive / unit | self / unit | calls / unit | function |")
        print("|--:|--:|--:|---|")
        for (_, incl, own, ncalls, _), name in zip(chosen, pretty):
            name = name.replace("|", "\\|")
            if len(name) > 140:
                name = name[:137] + "..."
            print(f"| {incl:,.0f} | {own:,.0f} | {ncalls:,.2f} | `{name}` |")


# --- Report ---------------------------------------------------------------------------------------------------

def report(path):
    values = {}
    notes = []
    with open(path) as file:
        for line in file:
            key, _, value = line.rstrip("\n").partition(" ")
            if key == "note":
                notes.append(value)
            elif key:
                values[key] = value

    def num(key):
        try:
            return float(values[key])
        except (KeyError, ValueError):
            return None

    def per_unit(prefix, metric, short, long_, divisor_scale=1):
        a, b = num(f"{prefix}_short_{metric}"), num(f"{prefix}_long_{metric}")
        ns, nl = num(short), num(long_)
        if a is None or b is None or ns is None or nl is None or nl == ns:
            return None
        return (b - a) / ((nl - ns) * divisor_scale)

    def cell(value, digits=0):
        return "n/a" if value is None else f"{value:,.{digits}f}"

    delay = values.get("delay_ms", "?")
    streams = [
        ("stream_native", f"streamed chunk: native `/api/generate` (NDJSON), a token per read {delay} ms apart"),
        ("stream_openai", f"streamed chunk: OpenAI `/v1/chat/completions` (SSE; `include_usage` injected, usage chunk withheld), a token per read {delay} ms apart"),
        ("stream_burst", "line in a burst: native `/api/generate`, no delays (many lines per read)"),
    ]
    print("| instructions per unit (callgrind, user space) | this proxy | nginx `proxy_pass` | proxy / nginx | allocations per unit, proxy / nginx | socket reads per unit, proxy / nginx |")
    print("|---|--:|--:|--:|--:|--:|")
    coalesced = []
    for key, label in streams:
        runs = int(num(f"{key}_runs") or 1)
        proxy_values, proxy_reads, proxy_allocs = [], [], []
        for run in range(1, runs + 1):
            suffix = "" if run == 1 else f"_run{run}"
            units = (f"{key}_short_units", f"{key}_long_units")
            proxy_values.append(per_unit(f"proxy_{key}{suffix}", "instructions", *units))
            proxy_reads.append(per_unit(f"proxy_{key}{suffix}", "reads", *units))
            proxy_allocs.append(per_unit(f"proxy_{key}{suffix}", "allocations", *units))
        nginx_value = per_unit(f"nginx_{key}", "instructions", f"{key}_short_units", f"{key}_long_units")
        nginx_reads = per_unit(f"nginx_{key}", "reads", f"{key}_short_units", f"{key}_long_units")
        proxy_text = " / ".join(cell(v) for v in proxy_values)
        if runs > 1 and all(v is not None for v in proxy_values) and min(proxy_values) > 0:
            proxy_text += f" (spread {(max(proxy_values) / min(proxy_values) - 1) * 100:.2f} %)"
        first = proxy_values[0]
        ratio = None if first is None or not nginx_value else first / nginx_value
        nginx_allocs = per_unit(f"nginx_{key}", "allocations", f"{key}_short_units", f"{key}_long_units")
        reads_text = " / ".join(cell(v, 2) for v in proxy_reads) + " / " + cell(nginx_reads, 2)
        allocs_text = " / ".join(cell(v, 2) for v in proxy_allocs) + " / " + cell(nginx_allocs, 2)
        print(f"| {label} | {proxy_text} | {cell(nginx_value)} | {cell(ratio, 2)}{'×' if ratio else ''} | {allocs_text} | {reads_text} |")
        if key != "stream_burst":
            for who, value in [("proxy", v) for v in proxy_reads] + [("nginx", nginx_reads)]:
                if value is not None and value < 0.98:
                    coalesced.append(f"{key} ({who}: {value:.2f} reads per chunk)")
    print()
    print("| inspection per unit: `ResponseInspector.inspect`, inclusive | native chunk | OpenAI chunk | line in a burst |")
    print("|---|--:|--:|--:|")
    print("| this proxy | " + " | ".join(
        cell(per_unit(f"proxy_{key}", "inspection", f"{key}_short_units", f"{key}_long_units"))
        for key in ("stream_native", "stream_openai", "stream_burst")) + " |")
    print()
    print("| per proxied request (callgrind) | instructions | allocations |")
    print("|---|--:|--:|")
    for key, label in (("req_tags", "`GET /api/tags` pass-through"),
                       ("req_generate", "non-streaming `POST /api/generate`"),
                       ("req_chat", f"streaming `POST /api/chat`, 10 tokens {delay} ms apart")):
        instructions = per_unit(f"proxy_{key}", "instructions", f"{key}_short_units", f"{key}_long_units")
        allocations = per_unit(f"proxy_{key}", "allocations", f"{key}_short_units", f"{key}_long_units")
        print(f"| {label} | {cell(instructions)} | {cell(allocations, 1)} |")
    if coalesced:
        notes.insert(0, "WARNING: chunks were coalesced into fewer reads than chunks, so those per-chunk figures are "
                        "too low and not reproducible; the measured process under callgrind could not keep up with "
                        "the token delay (raise COST_DELAY_MS): " + ", ".join(coalesced))
    if notes:
        print()
        for note in notes:
            print(f"- {note}")


def figures(path):
    """{"proxy_stream_native.instructions": per-unit value, …} for every figure RESULTS has both runs of."""
    values = {}
    with open(path) as file:
        for line in file:
            key, _, value = line.rstrip("\n").partition(" ")
            if key and key != "note":
                values[key] = value
    result = {}
    for key in values:
        match = re.match(r"^(proxy|nginx)_(stream_\w+?|req_\w+?)_short_(\w+)$", key)
        if not match:
            continue
        who, unit, metric = match.groups()
        try:
            short, long_ = float(values[key]), float(values[f"{who}_{unit}_long_{metric}"])
            units = float(values[f"{unit}_long_units"]) - float(values[f"{unit}_short_units"])
        except (KeyError, ValueError):
            continue
        if units > 0:
            result[f"{who}_{unit}.{metric}"] = (long_ - short) / units
    return result


def check(results_path, thresholds_path):
    """A figure fails when it exceeds its committed maximum by more than the tolerance; one well below its
    maximum is pointed out, so that the threshold can be lowered to keep the gain."""
    with open(thresholds_path) as file:
        committed = json.load(file)
    tolerance = float(committed.get("tolerance_percent", 5)) / 100
    measured = figures(results_path)
    print("| figure per unit | measured | committed maximum | verdict |")
    print("|---|--:|--:|---|")
    regressions = 0
    for key, maximum in committed["maxima"].items():
        value = measured.get(key)
        if value is None:
            verdict = "not measured"
        elif value > maximum * (1 + tolerance):
            verdict = f"**REGRESSION**: {(value / maximum - 1) * 100:+.1f} %"
            regressions += 1
        elif value < maximum * (1 - 2 * tolerance) and maximum >= 1:
            verdict = f"ok, {(value / maximum - 1) * 100:+.1f} %: lower the maximum to keep the gain"
        else:
            verdict = "ok"
        digits = 2 if maximum < 100 else 0
        shown = "n/a" if value is None else f"{value:,.{digits}f}"
        print(f"| `{key}` | {shown} | {maximum:,.{digits}f} | {verdict} |")
    print()
    print(f"- tolerance {tolerance * 100:g} % above each maximum ({thresholds_path})")
    if regressions:
        print(f"- {regressions} figure(s) above their maximum")
        sys.exit(3)


def main():
    if len(sys.argv) < 2:
        fail("usage: see the docstring")
    command, args = sys.argv[1], sys.argv[2:]
    if command == "ports":
        ports(int(args[0]))
    elif command == "wait-listen":
        sys.exit(wait_listen(int(args[0]), int(args[1]), float(args[2])))
    elif command == "stream":
        stream(int(args[0]), args[1], int(args[2]), int(args[3]))
    elif command == "requests":
        requests(int(args[0]), args[1], int(args[2]), int(args[3]) if len(args) > 3 else 1)
    elif command == "summary":
        summary(args[0])
    elif command == "top":
        top(args[0], args[1], float(args[2]), int(args[3]))
    elif command == "report":
        report(args[0])
    elif command == "check":
        check(args[0], args[1])
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    try:
        main()
    except (OSError, http.client.HTTPException, ValueError) as error:
        fail(f"{type(error).__name__}: {error}")
