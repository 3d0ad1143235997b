#!/usr/bin/env python3
"""The fault and soak run of scripts/soak: thousands of streams, short requests, client hang-ups at every phase,
Ollama failing in every way and restarted in the middle; then the proxy's books, descriptors and memory.

Standard library only. Starts the simulator and the proxy (release binaries) on loopback ports the kernel picks,
writes their PIDs to WORK/pids (so that scripts/soak can stop them if this process is killed), and stops them by
PID on the way out. Prints a Markdown summary on stdout, progress on stderr; exits 1 when a check fails.
"""

import argparse
import asyncio
import collections
import dataclasses
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import exposition  # noqa: E402
import process_watch  # noqa: E402
import traffic  # noqa: E402
from traffic import (AFTER_HEAD, AFTER_USAGE, BEFORE_RESPONSE, COMPLETED, HEAD_ONLY, MID_STREAM,  # noqa: E402
                     PARTIAL_BODY, PARTIAL_HEAD, READ, Connection, Kind, exchange)

# Long streams: a token every STREAM_DELAY_MS, 4 to 30 tokens (2 to 15 s), so that thousands of them are in flight
# at every moment without the load generator's own loop becoming the bottleneck.
STREAM_DELAY_MS = "500"
STREAM_TOKENS = (4, 30)
SLOW = ("X-Sim-Token-Delay-Ms", "100")

STREAM_KINDS = [
    Kind("stream-chat", "POST", "/api/chat", "native", True, tokens=STREAM_TOKENS, headers=(("X-Sim-Token-Delay-Ms", STREAM_DELAY_MS),)),
    Kind("stream-generate", "POST", "/api/generate", "native", True, tokens=STREAM_TOKENS, headers=(("X-Sim-Token-Delay-Ms", STREAM_DELAY_MS),)),
    Kind("stream-openai", "POST", "/v1/chat/completions", "openai", True, tokens=STREAM_TOKENS, include_usage=True,
         headers=(("X-Sim-Token-Delay-Ms", STREAM_DELAY_MS),)),
    Kind("stream-openai-withheld", "POST", "/v1/chat/completions", "openai", True, tokens=STREAM_TOKENS,
         headers=(("X-Sim-Token-Delay-Ms", STREAM_DELAY_MS),)),
    Kind("stream-anthropic", "POST", "/v1/messages", "anthropic", True, tokens=STREAM_TOKENS, headers=(("X-Sim-Token-Delay-Ms", STREAM_DELAY_MS),)),
]

SHORT_KINDS = [
    Kind("tags", "GET", "/api/tags"),
    Kind("short-generate", "POST", "/api/generate", "native", False),
    Kind("short-chat", "POST", "/api/chat", "native", False),
    Kind("short-openai", "POST", "/v1/chat/completions", "openai", False),
    Kind("short-anthropic", "POST", "/v1/messages", "anthropic", False),
    Kind("short-stream", "POST", "/api/generate", "native", True),
]

# Ollama failing: statuses, errors inside a stream, connections closed or reset before, in and after the head,
# mid-stream, and a stall after the head.
FAULT_KINDS = [
    Kind("status-500", "POST", "/api/chat", "native", True, headers=(("X-Sim-Status", "500"),)),
    Kind("status-429", "POST", "/v1/chat/completions", "openai", True, include_usage=True, headers=(("X-Sim-Status", "429"),)),
    Kind("status-404", "POST", "/v1/messages", "anthropic", True, headers=(("X-Sim-Status", "404"),)),
    Kind("error-native", "POST", "/api/generate", "native", True, tokens=(5, 5), headers=(("X-Sim-Error-After", "2"),)),
    Kind("error-openai", "POST", "/v1/chat/completions", "openai", True, tokens=(5, 5), include_usage=True,
         headers=(("X-Sim-Error-After", "2"),)),
    Kind("error-anthropic", "POST", "/v1/messages", "anthropic", True, tokens=(5, 5), headers=(("X-Sim-Error-After", "2"),)),
    Kind("drop-mid-stream", "POST", "/api/chat", "native", True, tokens=(10, 10),
         headers=(("X-Sim-Drop-After", "3"), ("X-Sim-Token-Delay-Ms", "10"))),
    Kind("drop-before-head", "POST", "/api/generate", "native", True, headers=(("X-Sim-Drop-After", "0"),)),
    Kind("reset-mid-stream", "POST", "/v1/chat/completions", "openai", True, tokens=(10, 10), include_usage=True,
         headers=(("X-Sim-Reset-After", "3"), ("X-Sim-Token-Delay-Ms", "10"))),
    Kind("reset-mid-stream-anthropic", "POST", "/v1/messages", "anthropic", True, tokens=(10, 10),
         headers=(("X-Sim-Reset-After", "2"),)),
    Kind("reset-mid-stream-native", "POST", "/api/generate", "native", True, tokens=(10, 10),
         headers=(("X-Sim-Reset-After", "4"), ("X-Sim-Token-Delay-Ms", "10"))),
    Kind("reset-non-streaming", "POST", "/api/chat", "native", False, headers=(("X-Sim-Reset-After", "1"),)),
    Kind("reset-mid-head", "POST", "/api/chat", "native", True, headers=(("X-Sim-Reset-Mid-Head", ("0", "9", "40", "1000")),)),
    Kind("reset-mid-head-openai", "POST", "/v1/chat/completions", "openai", False,
         headers=(("X-Sim-Reset-Mid-Head", ("5", "17", "1000")),)),
    Kind("reset-mid-head-tags", "GET", "/api/tags", headers=(("X-Sim-Reset-Mid-Head", ("0", "20")),)),
    Kind("stall-after-head", "POST", "/v1/messages", "anthropic", True, headers=(("X-Sim-Stall-After-Head-Ms", "2000"),)),
    Kind("stall-after-head-generate", "POST", "/api/generate", "native", False, headers=(("X-Sim-Stall-After-Head-Ms", "2000"),)),
]

# Clients hanging up in every phase. Those whose outcome depends on their own timing are racy (see Kind).
HANGUP_KINDS = [
    Kind("hangup-partial-head", "POST", "/api/chat", "native", True, action=PARTIAL_HEAD),
    Kind("hangup-head-only", "POST", "/v1/chat/completions", "openai", True, action=HEAD_ONLY, racy=True),
    Kind("hangup-partial-body", "POST", "/v1/messages", "anthropic", True, action=PARTIAL_BODY, racy=True),
    Kind("hangup-before-response", "POST", "/api/generate", "native", True, action=BEFORE_RESPONSE, racy=True,
         headers=(("X-Sim-Header-Delay-Ms", "5000"),)),
    Kind("hangup-in-stall", "POST", "/api/chat", "native", True, action=AFTER_HEAD, racy=True,
         headers=(("X-Sim-Stall-After-Head-Ms", "5000"),)),
    Kind("hangup-mid-stream", "POST", "/v1/chat/completions", "openai", True, include_usage=True, tokens=(100, 100),
         action=MID_STREAM, racy=True, headers=(SLOW,)),
    Kind("hangup-mid-stream-anthropic", "POST", "/v1/messages", "anthropic", True, tokens=(100, 100),
         action=MID_STREAM, racy=True, headers=(SLOW,)),
    Kind("hangup-after-usage", "POST", "/v1/chat/completions", "openai", True, include_usage=True, tokens=(5, 5),
         action=AFTER_USAGE, racy=True),
    Kind("hangup-after-usage-native", "POST", "/api/chat", "native", True, tokens=(5, 5), action=AFTER_USAGE, racy=True),
]

GROUPS = [("streams", STREAM_KINDS), ("short", SHORT_KINDS), ("faults", FAULT_KINDS), ("hang-ups", HANGUP_KINDS)]
GROUP_OF = {kind.name: group for group, kinds in GROUPS for kind in kinds}
REQUEST_TIMEOUT = 120       # a request taking longer is a hang
QUIET_BEFORE_KILL = 5.0     # racy hang-ups pause this long before the simulator is killed…
QUIET_AFTER_RESTART = 3.0   # …and resume this long after it is back
# The racy hang-ups leave at least this much time between the client's hang-up and Ollama's next move (header
# delay and stall 5 s after a hang-up at 0.2 s, usage 9.7 s after the third event, the quiet window around the
# restart): a load generator that wakes up later than this could misreport what its clients saw.
MAX_LAG = 3.0


def log(message):
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True, help="directory for logs and the PID file")
    parser.add_argument("--proxy-bin", required=True)
    parser.add_argument("--sim-bin", required=True)
    parser.add_argument("--seconds", type=float, default=180, help="duration of the load")
    parser.add_argument("--streams", type=int, default=2000, help="concurrent long streams")
    parser.add_argument("--short-rate", type=float, default=150, help="short requests per second")
    parser.add_argument("--fault-workers", type=int, default=24)
    parser.add_argument("--hangup-workers", type=int, default=16)
    parser.add_argument("--down-seconds", type=float, default=2.0, help="how long the simulator stays down")
    parser.add_argument("--idle-timeout", type=float, default=60, help="the proxy's upstream idle timeout, s")
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args()


# --- Processes ---------------------------------------------------------------------------------------------


class Processes:
    """The simulator and the proxy, started here with their output in files, stopped by PID."""

    def __init__(self, work):
        self.work = Path(work)
        self.started = []
        self.simulator = None
        self.simulator_runs = 0

    def _start(self, args, name):
        output = open(self.work / f"{name}.log", "wb")
        process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        output.close()
        self.started.append(process)
        with open(self.work / "pids", "a") as file:
            file.write(f"{process.pid}\n")
        return process

    def _wait_for(self, process, name, pattern, timeout=30):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (self.work / f"{name}.log").read_text(errors="replace")
            if match := regex.search(text):
                return match
            if process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{name}: {pattern!r} not seen; output:\n{(self.work / f'{name}.log').read_text()[-2000:]}")

    def start_simulator(self, sim_bin, port=0):
        self.simulator_runs += 1
        name = f"simulator-{self.simulator_runs}"
        for _ in range(50):  # the port of a killed simulator can take a moment to be free again
            process = self._start([sim_bin, "--host", "127.0.0.1", "--port", str(port)], name)
            try:
                match = self._wait_for(process, name, r"listening on http://127\.0\.0\.1:(\d+)")
                self.simulator = process
                return int(match.group(1))
            except RuntimeError:
                if port == 0 or "in use" not in (self.work / f"{name}.log").read_text(errors="replace"):
                    raise
                process.wait()
                time.sleep(0.1)
        raise RuntimeError(f"could not listen on :{port} again")

    def kill_simulator(self):
        self.simulator.send_signal(signal.SIGKILL)
        self.simulator.wait()

    def start_proxy(self, proxy_bin, upstream_port):
        process = self._start([proxy_bin, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                               "--ollama-url", f"http://127.0.0.1:{upstream_port}"], "proxy")
        port = int(self._wait_for(process, "proxy", r"listening on 127\.0\.0\.1:(\d+)").group(1))
        metrics_port = int(self._wait_for(process, "proxy", r"metrics on 127\.0\.0\.1:(\d+)").group(1))
        return process, port, metrics_port

    def stop_all(self):
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- The load ----------------------------------------------------------------------------------------------


class Tally:
    """What the clients saw, aggregated as it comes in."""

    def __init__(self):
        self.expected = collections.Counter()        # (label, endpoint, outcome) -> requests
        self.tokens = collections.Counter()          # (label, "prompt"|"completion") -> tokens
        self.by_kind = collections.defaultdict(collections.Counter)  # kind -> outcome -> requests
        self.seen_by_group = collections.defaultdict(collections.Counter)  # group -> what the client saw -> n
        self.problems = collections.Counter()
        self.problem_samples = []
        self.sent = 0               # inference requests the proxy received whole
        self.not_counted = 0        # requests that must leave no trace in the metrics
        self.requests = 0
        self.bytes = 0
        self.ambiguous = 0
        self.ambiguous_series = collections.Counter()
        self.ambiguous_tokens = collections.Counter()

    def add(self, seen):
        traffic.check_usage(seen)
        kind = seen.kind
        self.requests += 1
        self.bytes += seen.bytes_received
        outcome = seen.expected_outcome()
        group = GROUP_OF[kind.name]
        self.by_kind[kind.name][outcome or "not counted"] += 1
        self.seen_by_group[group][client_view(seen)] += 1
        if seen.problem or outcome == "unexplained" or seen.timed_out:
            what = seen.problem or ("no answer within %d s" % REQUEST_TIMEOUT if seen.timed_out else
                                    f"unexplained: status {seen.status}, cut {seen.cut}, ended {seen.ended}")
            self.problems[kind.name] += 1
            if len(self.problem_samples) < 20:
                self.problem_samples.append(f"{kind.name}: {what}")
        if outcome is None:
            self.not_counted += 1
            return
        self.sent += 1
        if outcome == "ambiguous":
            self.ambiguous += 1
            self.ambiguous_series[(seen.model_label, kind.path)] += 1
            self.ambiguous_tokens[(seen.model_label, "prompt")] += kind.prompt_tokens
            self.ambiguous_tokens[(seen.model_label, "completion")] += seen.tokens
            return
        self.expected[(seen.model_label, kind.path, outcome)] += 1
        if outcome == COMPLETED:
            self.tokens[(seen.model_label, "prompt")] += kind.prompt_tokens
            self.tokens[(seen.model_label, "completion")] += seen.tokens


def client_view(seen):
    """A short description of what the client got, for the table of errors seen by clients."""
    if not seen.sent_whole:
        return "hung up while sending"
    if seen.timed_out:
        return "timed out"
    if seen.status is None:
        return "hung up before the head" if seen.hung_up else "no response"
    if seen.status == 502:
        return "502 from the proxy"
    if not 200 <= seen.status < 300:
        return f"status {seen.status // 100}xx"
    if seen.hung_up:
        return "2xx, hung up"
    if seen.cut:
        return f"2xx, cut ({seen.cut})"
    if seen.error_event:
        return "2xx, error event"
    return "2xx, complete"


class Load:
    def __init__(self, args, processes, port, sim_port):
        self.args = args
        self.processes = processes
        self.port = port
        self.sim_port = sim_port
        self.tally = Tally()
        self.stopping = False
        self.calm = asyncio.Event()
        self.calm.set()
        self.index = 0
        self.restart = {}
        self.max_lag = 0.0

    def next_index(self):
        self.index += 1
        return self.index

    async def run_one(self, connection, kind):
        tokens = random.randint(*kind.tokens)
        seen = await exchange(connection, kind, self.next_index(), tokens, REQUEST_TIMEOUT)
        self.tally.add(seen)
        return seen

    async def accept_models(self):
        """One plain request for each kind's model, counted like the others, before the load: the proxy gives a
        model name a label of its own only once Ollama answered 2xx for it (README, Metrics), so afterwards every
        request of a kind is recorded under the kind's model, whatever Ollama or the client then do."""
        connection = Connection(self.port)
        for _, kinds in GROUPS:
            for kind in kinds:
                if not kind.is_inference:
                    continue
                plain = dataclasses.replace(kind, streaming=False, headers=(), action=READ, tokens=(3, 3),
                                            include_usage=False, racy=False)
                seen = await self.run_one(connection, plain)
                if seen.status != 200:
                    raise RuntimeError(f"the plain request of {kind.name} got {seen.status}, not 200")
        connection.close()

    async def stream_worker(self, ramp):
        await asyncio.sleep(random.uniform(0, ramp))
        connection = Connection(self.port)
        while not self.stopping:
            seen = await self.run_one(connection, random.choice(STREAM_KINDS))
            if seen.status == 502 or seen.cut:
                await asyncio.sleep(random.uniform(0.5, 1.0))  # Ollama is away: no tight retry loop
        connection.close()

    async def short_worker(self, interval):
        connection = Connection(self.port)
        while not self.stopping:
            started = time.monotonic()
            await self.run_one(connection, random.choice(SHORT_KINDS))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        connection.close()

    async def fresh_connection_worker(self, kinds):
        while not self.stopping:
            kind = random.choice(kinds)
            if kind.racy and not self.calm.is_set():
                await self.calm.wait()
                continue
            connection = Connection(self.port)
            await self.run_one(connection, kind)
            connection.close()
            await asyncio.sleep(random.uniform(0.01, 0.1))

    async def restart_simulator(self, started):
        middle = started + self.args.seconds / 2
        await asyncio.sleep(max(0.0, middle - QUIET_BEFORE_KILL - time.monotonic()))
        self.calm.clear()
        await asyncio.sleep(max(0.0, middle - time.monotonic()))
        loop = asyncio.get_running_loop()
        log("killing the simulator (SIGKILL)")
        await loop.run_in_executor(None, self.processes.kill_simulator)
        self.restart["killed_at"] = time.monotonic() - started
        await asyncio.sleep(self.args.down_seconds)
        await loop.run_in_executor(None, self.processes.start_simulator, self.args.sim_bin, self.sim_port)
        self.restart["back_at"] = time.monotonic() - started
        log(f"simulator back on :{self.sim_port} after {self.restart['back_at'] - self.restart['killed_at']:.1f} s")
        await asyncio.sleep(QUIET_AFTER_RESTART)
        self.calm.set()

    async def run(self, sampler):
        args = self.args
        await self.accept_models()
        started = time.monotonic()
        short_workers = max(1, min(32, int(args.short_rate / 10)))
        workers = [asyncio.create_task(self.stream_worker(ramp=10)) for _ in range(args.streams)]
        workers += [asyncio.create_task(self.short_worker(short_workers / args.short_rate)) for _ in range(short_workers)]
        workers += [asyncio.create_task(self.fresh_connection_worker(FAULT_KINDS)) for _ in range(args.fault_workers)]
        workers += [asyncio.create_task(self.fresh_connection_worker(HANGUP_KINDS)) for _ in range(args.hangup_workers)]
        restarter = asyncio.create_task(self.restart_simulator(started))
        progress = asyncio.create_task(self.report_progress(started, sampler))
        await asyncio.sleep(args.seconds)
        self.stopping = True
        self.calm.set()
        log(f"load over after {args.seconds:.0f} s: waiting for the requests in flight")
        done, pending = await asyncio.wait(workers, timeout=REQUEST_TIMEOUT + 10)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception():
                raise task.exception()
        await restarter
        progress.cancel()
        self.elapsed = time.monotonic() - started
        return len(pending)

    async def report_progress(self, started, sampler):
        """Logs progress every 15 s, and measures how late this loop wakes up: the racy hang-ups' margins
        (QUIET_BEFORE_KILL, the seconds between a hang-up and what Ollama sends next) assume it stays small."""
        last_report = time.monotonic()
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.1)
            self.max_lag = max(self.max_lag, time.monotonic() - before - 0.1)
            if time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                tally = self.tally
                log(f"t={last_report - started:5.0f} s: {tally.requests} requests, {tally.sent} inference, "
                    f"{sum(tally.problems.values())} problems; proxy fds {sampler.last_fds}, "
                    f"RSS {sampler.last.rss_kb / 1024:.1f} MB; load generator lag up to {self.max_lag:.2f} s")


class Sampler:
    """Samples the proxy's descriptor count and memory twice a second; keeps the peaks."""

    def __init__(self, pid):
        self.pid = pid
        self.peak_fds = 0
        self.peak = process_watch.Memory()
        self.last = process_watch.Memory()
        self.last_fds = 0
        self.running = True

    def sample(self):
        fds = process_watch.descriptors(self.pid, (), 0, detailed=False).total
        memory = process_watch.memory(self.pid)
        self.last, self.last_fds = memory, fds
        self.peak_fds = max(self.peak_fds, fds)
        self.peak = process_watch.Memory(max(self.peak.rss_kb, memory.rss_kb),
                                         max(self.peak.anonymous_kb, memory.anonymous_kb))

    async def run(self):
        while self.running:
            try:
                self.sample()
            except OSError:
                return  # the proxy is gone: the checks say so
            await asyncio.sleep(0.5)


# --- The checks --------------------------------------------------------------------------------------------


def recorded_outcomes(samples):
    """(label, endpoint, outcome) -> requests, from ollama_requests_total and ollama_request_failures_total."""
    table = collections.Counter()
    for (model, endpoint), value in exposition.by_labels(samples, "ollama_requests_total", "model", "endpoint").items():
        if value:
            table[(model, endpoint, COMPLETED)] += int(value)
    failures = exposition.by_labels(samples, "ollama_request_failures_total", "model", "endpoint", "reason")
    for (model, endpoint, reason), value in failures.items():
        if value:
            table[(model, endpoint, reason)] += int(value)
    return table


class Checks:
    def __init__(self):
        self.results = []

    def check(self, name, passed, detail):
        self.results.append((name, passed, detail))
        log(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}")

    @property
    def passed(self):
        return all(passed for _, passed, _ in self.results)


def wait_for_idle_gauges(metrics_port, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        samples = exposition.samples(exposition.scrape(metrics_port))
        active = sum(value for name, _, value in samples if name == "ollama_active_requests")
        if active == 0 or time.monotonic() > deadline:
            return samples, active
        time.sleep(0.5)


def check_books(checks, tally, samples, active):
    recorded = recorded_outcomes(samples)
    total_recorded = sum(recorded.values())
    checks.check("requests sent = requests recorded", tally.sent == total_recorded,
                 f"{tally.sent} inference requests reached the proxy whole; recorded {total_recorded} "
                 f"(completed {sum(v for k, v in recorded.items() if k[2] == COMPLETED)} + failed "
                 f"{sum(v for k, v in recorded.items() if k[2] != COMPLETED)}); {tally.ambiguous} ambiguous")
    # Kind by kind and outcome by outcome. An ambiguous request (see Seen.expected_outcome) is completed or
    # upstream_disconnected: each of its series may hold up to that many more than the clients could tell.
    mismatches = []
    expected = tally.expected
    for label, endpoint in tally.ambiguous_series:
        count = tally.ambiguous_series[(label, endpoint)]
        completed, cut = (label, endpoint, COMPLETED), (label, endpoint, "upstream_disconnected")
        extra = recorded[completed] - expected[completed]
        if 0 <= extra <= count and recorded[cut] - expected[cut] == count - extra:
            expected[completed] += extra
            expected[cut] += count - extra
    for key in sorted(set(recorded) | set(expected)):
        if recorded[key] != expected[key]:
            mismatches.append(f"{key[0]} {key[1]} {key[2]}: clients saw {expected[key]}, recorded {recorded[key]}")
    checks.check("outcomes by model, endpoint and reason", not mismatches,
                 "all equal" if not mismatches else "; ".join(mismatches[:12]))
    durations = exposition.by_labels(samples, "ollama_request_duration_seconds_count", "model", "endpoint")
    by_series = collections.Counter()
    for (model, endpoint, _), value in recorded.items():
        by_series[(model, endpoint)] += value
    unequal = [f"{k}: {durations.get(k, 0):.0f} durations, {v} requests" for k, v in by_series.items() if durations.get(k, 0) != v]
    checks.check("durations observed = requests recorded", not unequal, "all equal" if not unequal else "; ".join(unequal[:6]))
    token_mismatches = []
    for family, part in (("ollama_prompt_tokens_total", "prompt"), ("ollama_completion_tokens_total", "completion")):
        exposed = exposition.by_labels(samples, family, "model")
        labels = {model for (model,) in exposed} | {label for (label, p) in tally.tokens if p == part}
        for label in sorted(labels):
            low = tally.tokens[(label, part)]
            if not low <= int(exposed.get((label,), 0)) <= low + tally.ambiguous_tokens[(label, part)]:
                token_mismatches.append(f"{label} {part}: clients expect {tally.tokens[(label, part)]}, "
                                        f"recorded {exposed.get((label,), 0):.0f}")
    checks.check("tokens recorded = tokens of completed requests", not token_mismatches,
                 "exact for every model" if not token_mismatches else "; ".join(token_mismatches[:6]))
    checks.check("ollama_active_requests back to 0", active == 0, f"sum {active:.0f}")


# --- Summary -----------------------------------------------------------------------------------------------


def mb(kb):
    return f"{kb / 1024:.1f} MB"


def print_summary(args, load, checks, figures, not_finished):
    tally = load.tally
    print(f"## Soak run ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    short = sum(sum(tally.by_kind[kind.name].values()) for kind in SHORT_KINDS)
    print(f"- {args.seconds:.0f} s of load: {args.streams} concurrent streams (a token every {STREAM_DELAY_MS} ms, "
          f"{STREAM_TOKENS[0]}-{STREAM_TOKENS[1]} tokens), {short / load.elapsed:.0f} short requests/s (asked for "
          f"{args.short_rate:.0f}), {args.fault_workers} fault and "
          f"{args.hangup_workers} hang-up clients; simulator killed (SIGKILL) at "
          f"{load.restart.get('killed_at', 0):.0f} s, back at {load.restart.get('back_at', 0):.0f} s")
    print(f"- {tally.requests} requests in {load.elapsed:.0f} s ({tally.requests / load.elapsed:.0f}/s), "
          f"{tally.bytes / 1e6:.0f} MB received by clients; {tally.sent} inference requests reached the proxy whole, "
          f"{tally.not_counted} requests leave no inference record (pass-through, or the client left before "
          f"its request was whole); {not_finished} requests cut at the end of the run; the load generator's "
          f"event loop woke up to {load.max_lag:.2f} s late\n")
    outcomes = ["completed", "http_4xx", "http_5xx", "upstream_unreachable", "upstream_disconnected",
                "client_disconnected", "stream_error", "no_usage", "not counted"]
    print("| kind | requests | " + " | ".join(outcomes) + " |")
    print("|---|--:|" + "--:|" * len(outcomes))
    for group, kinds in GROUPS:
        for kind in kinds:
            row = tally.by_kind[kind.name]
            print(f"| {group}: {kind.name} | {sum(row.values())} | " + " | ".join(str(row[o] or "") for o in outcomes) + " |")
    print("\nWhat clients saw:\n")
    views = sorted({view for counter in tally.seen_by_group.values() for view in counter})
    print("| group | " + " | ".join(views) + " |")
    print("|---|" + "--:|" * len(views))
    for group, _ in GROUPS:
        print(f"| {group} | " + " | ".join(str(tally.seen_by_group[group][v] or "") for v in views) + " |")
    print("\nThe proxy:\n")
    print("| | descriptors | RSS | private anonymous |")
    print("|---|--:|--:|--:|")
    for name, fds, memory in figures:
        print(f"| {name} | {fds} | {mb(memory.rss_kb)} | {mb(memory.anonymous_kb)} |")
    print("\nChecks:\n")
    for name, passed, detail in checks.results:
        print(f"- {'pass' if passed else '**FAIL**'}: {name}: {detail}")
    if tally.problem_samples:
        print("\nProblems seen by clients (first 20):\n")
        for sample in tally.problem_samples:
            print(f"- {sample}")


# --- Main --------------------------------------------------------------------------------------------------


def healthz(metrics_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=10) as response:
            return response.status
    except OSError as error:
        return str(error)


async def soak(args, processes):
    sim_port = processes.start_simulator(args.sim_bin)
    proxy, port, metrics_port = processes.start_proxy(args.proxy_bin, sim_port)
    pid = proxy.pid
    log(f"simulator on :{sim_port}, proxy on :{port} (metrics :{metrics_port}), proxy PID {pid}")
    limit = process_watch.open_files_limit(pid)
    needed = 2 * args.streams + 1024
    if limit is not None and limit < needed:
        raise RuntimeError(f"the proxy may open only {limit} files, this run needs about {needed}: raise ulimit -n")

    ports = (port, metrics_port)
    exposition.scrape(metrics_port)  # the metrics path warmed up, like Ollama's status calls behind it
    await asyncio.sleep(2)
    idle_fds = process_watch.descriptors(pid, ports, sim_port)
    idle_memory = process_watch.memory(pid)
    log(f"idle: descriptors {idle_fds}; RSS {mb(idle_memory.rss_kb)}, anonymous {mb(idle_memory.anonymous_kb)}")

    sampler = Sampler(pid)
    sampling = asyncio.create_task(sampler.run())
    load = Load(args, processes, port, sim_port)
    not_finished = await load.run(sampler)
    sampler.running = False
    await sampling

    checks = Checks()
    checks.check("the load generator kept its timing", load.max_lag < MAX_LAG,
                 f"its event loop woke up to {load.max_lag:.2f} s late (the hang-ups' margins allow {MAX_LAG:.0f} s)")
    checks.check("the proxy ran throughout", proxy.poll() is None, "alive" if proxy.poll() is None else
                 f"exited with {proxy.returncode}")
    if proxy.poll() is not None:
        print_summary(args, load, checks, [], not_finished)
        return False
    end_fds = process_watch.descriptors(pid, ports, sim_port)
    end_memory = process_watch.memory(pid)
    log(f"after the load: descriptors {end_fds}")
    samples, active = await asyncio.get_running_loop().run_in_executor(None, wait_for_idle_gauges, metrics_port)
    check_books(checks, load.tally, samples, active)
    problems = sum(load.tally.problems.values())
    checks.check("every client got an answer it can explain", problems == 0,
                 f"{problems} problems" + (f" ({dict(load.tally.problems)})" if problems else ""))
    checks.check("client connections closed", end_fds.clients == 0, f"{end_fds.clients} open after the load")

    # Idle connections to Ollama are closed after the upstream idle timeout; then the heap is trimmed.
    log(f"waiting up to {args.idle_timeout + 30:.0f} s for the pooled connections to Ollama to expire")
    deadline = time.monotonic() + args.idle_timeout + 30
    settled_fds = process_watch.descriptors(pid, ports, sim_port)
    while (settled_fds.upstream or settled_fds.clients) and time.monotonic() < deadline:
        await asyncio.sleep(1)
        settled_fds = process_watch.descriptors(pid, ports, sim_port)
    settled_memory = process_watch.memory(pid)
    for _ in range(15):  # the trim runs in the background: wait until memory stops going down
        await asyncio.sleep(1)
        now = process_watch.memory(pid)
        if now.anonymous_kb >= settled_memory.anonymous_kb:
            settled_memory = now
            break
        settled_memory = now
    settled_fds = process_watch.descriptors(pid, ports, sim_port)
    log(f"settled: descriptors {settled_fds}; RSS {mb(settled_memory.rss_kb)}, "
        f"anonymous {mb(settled_memory.anonymous_kb)}")
    checks.check("descriptors back to idle", settled_fds.total == idle_fds.total and settled_fds.upstream == 0,
                 f"idle {idle_fds.total}, peak {sampler.peak_fds}, right after the load {end_fds.total} "
                 f"({end_fds.upstream} pooled connections to Ollama), settled {settled_fds.total}")
    memory_slack_kb = 16 * 1024
    checks.check("memory back near idle",
                 settled_memory.anonymous_kb <= idle_memory.anonymous_kb + memory_slack_kb
                 and settled_memory.rss_kb <= idle_memory.rss_kb + memory_slack_kb,
                 f"anonymous {mb(idle_memory.anonymous_kb)} idle, {mb(sampler.peak.anonymous_kb)} peak, "
                 f"{mb(settled_memory.anonymous_kb)} settled; RSS {mb(idle_memory.rss_kb)}, "
                 f"{mb(sampler.peak.rss_kb)}, {mb(settled_memory.rss_kb)} (allowed: idle + {mb(memory_slack_kb)})")
    status = healthz(metrics_port)
    checks.check("/healthz answers 200", status == 200, str(status))

    figures = [
        ("idle, before the load", idle_fds.total, idle_memory),
        ("peak during the load", sampler.peak_fds, sampler.peak),
        ("right after the load", end_fds.total, end_memory),
        (f"settled (pooled connections expired)", settled_fds.total, settled_memory),
    ]
    print_summary(args, load, checks, figures, not_finished)
    return checks.passed


def main():
    args = parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    processes = Processes(args.work)
    # SIGTERM (scripts/soak's hard timeout) unwinds through `finally`, which stops what was started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        passed = asyncio.run(soak(args, processes))
    finally:
        processes.stop_all()
    proxy_log = (Path(args.work) / "proxy.log").read_text(errors="replace")
    if "Fatal error" in proxy_log or "Precondition failed" in proxy_log:
        log("the proxy's log shows a crash")
        passed = False
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
