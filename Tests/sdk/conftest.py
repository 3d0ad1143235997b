"""Fixtures for the SDK suite: the real proxy binary in front of the real simulator binary, both on
loopback ports the kernel picks, both stopped by PID when the test ends."""

import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def _bin_dir() -> Path:
    override = os.environ.get("SWIFT_BIN_PATH")
    if override:
        return Path(override)
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


BIN = _bin_dir()


class Started:
    """A child process whose output is read on a thread, so a startup line can be waited for."""

    def __init__(self, args):
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.lines = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, pattern, timeout=30):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise RuntimeError(f"{pattern!r} not seen; output: {''.join(self.lines)}")
                self._cond.wait(remaining)

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Metrics:
    """A scrape of /metrics, parsed by Prometheus' own client library."""

    def __init__(self, text):
        self.samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                self.samples[key] = sample.value

    def value(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))))


class Stack:
    def __init__(self, simulator_url, proxy_url, metrics_url):
        self.simulator_url = simulator_url
        self.proxy_url = proxy_url
        self.metrics_url = metrics_url

    def metrics(self) -> Metrics:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            return Metrics(response.read().decode())

    def metrics_until(self, predicate, timeout=10) -> Metrics:
        deadline = time.monotonic() + timeout
        metrics = self.metrics()
        while not predicate(metrics) and time.monotonic() < deadline:
            time.sleep(0.02)
            metrics = self.metrics()
        return metrics


@pytest.fixture
def stack():
    simulator = Started([str(BIN / "ollama-simulator"), "--host", "127.0.0.1", "--port", "0"])
    proxy = None
    try:
        simulator_url = simulator.wait_for(r"listening on (http://\S+)").group(1)
        proxy = Started([
            str(BIN / "ollama-metrics-proxy"),
            "--listen", "127.0.0.1:0",
            "--metrics-listen", "127.0.0.1:0",
            "--ollama-url", simulator_url,
        ])
        proxy_port = proxy.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1)
        metrics_port = proxy.wait_for(r"metrics on 127\.0\.0\.1:(\d+)").group(1)
        yield Stack(simulator_url, f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        if proxy:
            proxy.stop()
        simulator.stop()
