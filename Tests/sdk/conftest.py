"""Fixtures for the SDK suite: the real proxy binary in front of the real simulator binary, both on
loopback ports the kernel picks, both stopped by PID when the test ends."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from local_stack import start_proxy, start_simulator  # noqa: E402  (shared with scripts/check-prometheus)


def _bin_dir() -> Path:
    override = os.environ.get("SWIFT_BIN_PATH")
    if override:
        return Path(override)
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


BIN = _bin_dir()


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
    simulator, simulator_url = start_simulator(BIN / "ollama-simulator")
    proxy = None
    try:
        proxy, proxy_port, metrics_port = start_proxy(BIN / "ollama-metrics-proxy", simulator_url)
        yield Stack(simulator_url, f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        if proxy:
            proxy.stop()
        simulator.stop()
