"""The demo's load: clients sending a realistic mix to the proxy, for scripts/demo and scripts/check-status-page.

Standard library only (and local_stack). Requests carry the simulator's X-Sim-* headers so that each model
answers at the speed of a consumer GPU, with now and then a cold load, errors and clients hanging up.
"""

import random
import threading
import time
from collections import Counter

from local_stack import OpenStream, StackError, post

# Model → milliseconds per token: roughly what these sizes generate on one consumer GPU.
MODELS = {"llama3.2": 14, "qwen2.5:0.5b": 6, "llama3.1:8b": 28}


def simulated(model, rng):
    """X-Sim-* headers for one realistic request: its length, prompt, timings (and a cold load now and then)."""
    per_token_ms = MODELS[model]
    prompt_ms = rng.randint(40, 400)
    headers = {
        "X-Sim-Tokens": str(rng.randint(20, 250)),
        "X-Sim-Prompt-Tokens": str(rng.randint(20, 3000)),
        "X-Sim-Token-Delay-Ms": str(per_token_ms),
        "X-Sim-Token-Duration-Ns": str(per_token_ms * 1_000_000),
        "X-Sim-Prompt-Eval-Duration-Ns": str(prompt_ms * 1_000_000),
        "X-Sim-Load-Duration-Ns": "20000000",
        "X-Sim-Header-Delay-Ms": str(prompt_ms),
    }
    if rng.random() < 0.03:  # the model was unloaded: loading it takes seconds before the first token
        headers.update({"X-Sim-Header-Delay-Ms": "2500", "X-Sim-Load-Duration-Ns": "2200000000"})
    return headers


def chat(model, stream):
    return {"model": model, "messages": [{"role": "user", "content": "Why is the sky blue?"}], "stream": stream}


def anthropic(model, stream):
    return {"model": model, "max_tokens": 512, "messages": [{"role": "user", "content": "Why is the sky blue?"}],
            "stream": stream}


class Load:
    """Clients sending a mix of dialects, streaming and not, with errors and cancellations, until stopped."""

    # (name, weight, path, body(model), extra headers, expected status); "cancel" hangs up mid-stream.
    SCENARIOS = [
        ("native chat stream", 25, "/api/chat", lambda m: chat(m, True), {}, 200),
        ("native generate", 8, "/api/generate", lambda m: {"model": m, "prompt": "Hi", "stream": False}, {}, 200),
        ("OpenAI chat stream", 20, "/v1/chat/completions", lambda m: chat(m, True), {}, 200),
        ("OpenAI chat", 6, "/v1/chat/completions", lambda m: chat(m, False), {}, 200),
        ("Anthropic stream", 15, "/v1/messages", lambda m: anthropic(m, True), {}, 200),
        ("embed", 5, "/api/embed", lambda m: {"model": "nomic-embed-text", "input": "sky"}, {}, 200),
        ("500 out of memory", 4, "/api/chat", lambda m: chat(m, True),
         {"X-Sim-Status": "500", "X-Sim-Error-Message": "model requires more system memory"}, 500),
        ("404 unknown model", 3, "/api/chat", lambda m: chat("missing-model", False), {}, 404),
        ("error mid-stream", 3, "/v1/chat/completions", lambda m: chat(m, True), {"X-Sim-Error-After": "5"}, 200),
        ("client hangs up", 5, "cancel", None, {}, None),
    ]

    def __init__(self, proxy_url, proxy_port, clients, seconds):
        self.proxy_url, self.proxy_port = proxy_url, proxy_port
        self.deadline = time.monotonic() + seconds
        self.stopping = threading.Event()
        self.outcomes = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(index,), daemon=True) for index in range(clients)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def done(self):
        return self.stopping.is_set() or time.monotonic() >= self.deadline

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def client(self, index):
        rng = random.Random(index)
        names = [s[0] for s in self.SCENARIOS]
        weights = [s[1] for s in self.SCENARIOS]
        while not self.done():
            name, _, path, body, extra, expected = self.SCENARIOS[names.index(rng.choices(names, weights)[0])]
            model = rng.choice(list(MODELS))
            headers = {**simulated(model, rng), **extra}
            try:
                if path == "cancel":
                    stream = OpenStream(self.proxy_port, "/api/chat", chat(model, True), headers)
                    stream.read_until(b'"content"')
                    time.sleep(rng.uniform(0.1, 0.5))
                    stream.close()
                    outcome = name
                else:
                    status, _ = post(self.proxy_url, path, body(model), headers)
                    outcome = name if status == expected else f"{name}: unexpected {status}"
            except (OSError, StackError) as error:
                if self.done():
                    break
                outcome = f"{name}: {type(error).__name__}"
            with self.lock:
                self.outcomes[outcome] += 1
            self.stopping.wait(rng.uniform(0.05, 0.6))

    def summary(self):
        with self.lock:
            total = sum(self.outcomes.values())
            parts = ", ".join(f"{count} {name}" for name, count in self.outcomes.most_common())
        return f"{total} requests: {parts}" if total else "no request finished yet"
