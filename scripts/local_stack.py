"""The simulator, the proxy and Prometheus on loopback, for scripts/check-prometheus and scripts/demo.

Standard library only. Every process is a child started here and stopped by its PID.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus-rules.yml"
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus.yml"


class StackError(Exception):
    """Something did not start or answer as expected; the message says what and shows its output."""


class Started:
    """A child process whose output is read on a thread, so a startup line can be waited for."""

    def __init__(self, args, echo=None):
        self.name = Path(args[0]).name
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                        start_new_session=True)  # Ctrl-C reaches the caller only, which stops it
        self.lines = []
        self._echo = echo
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
            if self._echo:
                self._echo(self.name, line)

    def output(self, last=3000):
        with self._cond:
            return "".join(self.lines)[-last:]

    def wait_for(self, pattern, timeout=30):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if match := regex.search(line):
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise StackError(f"{self.name}: {pattern!r} not seen; output:\n{''.join(self.lines)[-3000:]}")
                self._cond.wait(remaining)

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def bin_dir(configuration="debug"):
    args = ["swift", "build", "--show-bin-path", "-c", configuration]
    return Path(subprocess.check_output(args, cwd=ROOT, text=True).strip())


def binaries(configuration="debug"):
    """(proxy, simulator): PROXY_BIN and SIM_BIN when both are set, else the build's."""
    if os.environ.get("PROXY_BIN") and os.environ.get("SIM_BIN"):
        return Path(os.environ["PROXY_BIN"]).resolve(), Path(os.environ["SIM_BIN"]).resolve()
    path = bin_dir(configuration)
    return path / "ollama-metrics-proxy", path / "ollama-simulator"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_simulator(simulator_bin, *options, echo=None):
    """Returns (process, base URL)."""
    simulator = Started([str(simulator_bin), "--host", "127.0.0.1", "--port", "0", *options], echo=echo)
    try:
        return simulator, simulator.wait_for(r"listening on (http://\S+)").group(1)
    except StackError:
        simulator.stop()
        raise


def start_proxy(proxy_bin, ollama_url, *options, echo=None):
    """Returns (process, proxy port, metrics port)."""
    proxy = Started([str(proxy_bin), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                     "--ollama-url", ollama_url, *options], echo=echo)
    try:
        proxy_port = int(proxy.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))
        metrics_port = int(proxy.wait_for(r"metrics on 127\.0\.0\.1:(\d+)").group(1))
        return proxy, proxy_port, metrics_port
    except StackError:
        proxy.stop()
        raise


def scrape_job_name():
    """The job name of deploy/prometheus.yml, which the rules match (up{job="ollama"})."""
    match = re.search(r"^\s*-\s*job_name:\s*['\"]?([\w-]+)", SCRAPE_CONFIG.read_text(), re.MULTILINE)
    if not match:
        raise StackError(f"no job_name in {SCRAPE_CONFIG}")
    return match.group(1)


def start_prometheus(directory, metrics_port, interval="1s"):
    """Prometheus scraping 127.0.0.1:metrics_port and evaluating deploy/prometheus-rules.yml every `interval`,
    its storage in `directory`. Returns (process, base URL) once /-/ready answers."""
    config = Path(directory) / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(RULES)],
        "scrape_configs": [{
            "job_name": scrape_job_name(),
            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
        }],
    }))
    for _ in range(3):  # the port is free when picked; another process may take it before Prometheus binds it
        port = free_port()
        prometheus = Started([
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={directory}/data",
            f"--web.listen-address=127.0.0.1:{port}",
        ])
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while prometheus.process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return prometheus, url
            except OSError:
                time.sleep(0.1)
        prometheus.stop()
        if "address already in use" not in prometheus.output():
            break
    errors = [line for line in prometheus.output(last=100_000).splitlines() if "level=error" in line]
    raise StackError("Prometheus did not become ready:\n" + ("\n".join(errors) or prometheus.output()))


def post(base, path, body, headers=None, timeout=60):
    """POSTs JSON; returns (status, body). Error statuses are returned, not raised."""
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class OpenStream:
    """A request on a raw socket, so that it can be left open or hung up on mid-response."""

    def __init__(self, port, path, body, headers):
        payload = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(head.encode() + payload)

    def read_until(self, marker):
        """Reads until `marker` went by; raises StackError if the response ends first."""
        received = b""
        while marker not in received:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise StackError(f"stream closed before {marker!r}: {received[-500:]!r}")
            received += chunk
        return received

    def close(self):
        self.sock.close()


def query(prometheus_url, expr):
    """An instant query: (result, None), or (None, Prometheus' error)."""
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        answer = json.load(error)
    if answer.get("status") != "success":
        return None, answer.get("error", answer)
    return answer["data"]["result"], None


def api(prometheus_url, path):
    with urllib.request.urlopen(prometheus_url + path, timeout=10) as response:
        return json.load(response)["data"]


if __name__ == "__main__":
    sys.exit("a module for scripts/check-prometheus and scripts/demo")
