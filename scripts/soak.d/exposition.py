"""The proxy's /metrics, scraped and read into samples."""

import re
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(metrics_port, timeout=10):
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def samples(text):
    """[(name, {label: value}, float)] of every sample."""
    result = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match:
            raise ValueError(f"unreadable exposition line: {line!r}")
        name, labels, value = match.groups()
        result.append((name, dict(LABEL.findall(labels or "")), float(value)))
    return result


def by_labels(all_samples, name, *keys):
    """{(label values…): value} of the samples of `name`, summed over the labels not in `keys`."""
    table = {}
    for sample_name, labels, value in all_samples:
        if sample_name == name:
            key = tuple(labels.get(k) for k in keys)
            table[key] = table.get(key, 0) + value
    return table
