#!/usr/bin/env python3
"""Many concurrent slow /api/generate streams through the proxy (figure 7 of scripts/bench).

Standard library only: asyncio streams, HTTP/1.1 by hand (chunked or Content-Length bodies). Each stream
asks the simulator behind the proxy for TOKENS tokens, one every DELAY_MS, and checks that it received every
line: TOKENS `"done":false` lines and a final `"done":true` line carrying the expected counts. Meanwhile it
samples the proxy's VmRSS. At the end it scrapes the proxy's /metrics and checks that the request and token
counters of the model it used are exact. Prints one JSON object on stdout.
"""
import argparse
import asyncio
import json
import resource
import time


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the proxy's PID, for VmRSS sampling")
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--delay-ms", type=int, default=100)
    parser.add_argument("--prompt-tokens", type=int, default=11)
    parser.add_argument("--model", default="slow-streams")
    parser.add_argument("--ramp-seconds", type=float, default=2.0, help="streams are opened evenly over this time")
    return parser.parse_args()


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Run:
    def __init__(self, args):
        self.args = args
        self.ok = 0
        self.errors = 0
        self.error_samples = []
        self.open_now = 0
        self.peak_open = 0
        self.peak_rss_kb = 0
        self.bytes_received = 0
        self.done = False

    def fail(self, index, message):
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"stream {index}: {message}")


async def read_head(reader):
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before the status line")
    parts = status_line.decode("latin-1").split(" ", 2)
    status = int(parts[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def body_pieces(reader, headers):
    """Yields the body's bytes as they arrive (chunked or Content-Length framing)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readline()
            if not size_line:
                raise ConnectionError("connection closed inside a chunked body")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            yield data
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining > 0:
            data = await reader.read(min(remaining, 65536))
            if not data:
                raise ConnectionError("connection closed inside the body")
            remaining -= len(data)
            yield data
    else:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data


async def one_stream(run, index):
    args = run.args
    body = json.dumps({"model": args.model, "prompt": f"stream {index}"}, separators=(",", ":")).encode()
    request = (
        f"POST /api/generate HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{args.port}\r\n"
        f"Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Sim-Tokens: {args.tokens}\r\n"
        f"X-Sim-Token-Delay-Ms: {args.delay_ms}\r\n"
        f"X-Sim-Prompt-Tokens: {args.prompt_tokens}\r\n"
        f"\r\n"
    ).encode() + body
    writer = None
    counted_open = False
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port, limit=1 << 22)
        writer.write(request)
        await writer.drain()
        status, headers = await read_head(reader)
        run.open_now += 1
        counted_open = True
        run.peak_open = max(run.peak_open, run.open_now)
        if status != 200:
            run.fail(index, f"status {status}")
            return
        pending = b""
        ordinary = 0
        final = None
        async for piece in body_pieces(reader, headers):
            run.bytes_received += len(piece)
            pending += piece
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if final is not None:
                    run.fail(index, "a line after the done:true line")
                    return
                obj = json.loads(line)
                if obj.get("done") is True:
                    final = obj
                elif obj.get("done") is False and "error" not in obj:
                    ordinary += 1
                else:
                    run.fail(index, f"unexpected line {line[:120]!r}")
                    return
        if pending:
            run.fail(index, f"unterminated last line {pending[:120]!r}")
        elif final is None:
            run.fail(index, f"no done:true line after {ordinary} lines")
        elif ordinary != args.tokens:
            run.fail(index, f"{ordinary} token lines, expected {args.tokens}")
        elif final.get("eval_count") != args.tokens or final.get("prompt_eval_count") != args.prompt_tokens:
            run.fail(index, f"final line counts {final.get('prompt_eval_count')}/{final.get('eval_count')}")
        else:
            run.ok += 1
    except Exception as error:  # noqa: BLE001 - every failure is counted and sampled
        run.fail(index, f"{type(error).__name__}: {error}")
    finally:
        if counted_open:
            run.open_now -= 1
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except Exception:  # noqa: BLE001
                pass


async def sample_rss(run):
    while not run.done:
        value = rss_kb(run.args.pid)
        if value is not None:
            run.peak_rss_kb = max(run.peak_rss_kb, value)
        await asyncio.sleep(0.1)


async def scrape(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status, headers = await read_head(reader)
    text = b"".join([piece async for piece in body_pieces(reader, headers)]).decode()
    writer.close()
    return status, text


def series(text, name, model):
    """Sum of the samples of `name` whose model label is `model`."""
    total = None
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        labels, _, value = line.rpartition(" ")
        if f'model="{model}"' not in labels:
            continue
        total = (total or 0) + float(value)
    return total


async def main():
    args = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    run = Run(args)
    sampler = asyncio.create_task(sample_rss(run))
    started = time.monotonic()
    interval = args.ramp_seconds / max(1, args.streams)
    tasks = []
    for index in range(args.streams):
        tasks.append(asyncio.create_task(one_stream(run, index)))
        target = started + (index + 1) * interval
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    deadline = args.ramp_seconds + args.tokens * args.delay_ms / 1000 * 2 + 60
    _, not_done = await asyncio.wait(tasks, timeout=deadline)
    for task in not_done:
        task.cancel()
    if not_done:
        run.errors += len(not_done)
        run.error_samples.append(f"{len(not_done)} streams still running after {deadline:.0f} s")
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.5)  # let the proxy record the last requests
    run.done = True
    await sampler
    status, text = await scrape(args.metrics_port)
    requests = series(text, "ollama_requests_total", args.model)
    prompt = series(text, "ollama_prompt_tokens_total", args.model)
    completion = series(text, "ollama_completion_tokens_total", args.model)
    active = series(text, "ollama_active_requests", args.model)
    expected_requests = args.streams
    counters_exact = (
        status == 200
        and requests == expected_requests
        and prompt == expected_requests * args.prompt_tokens
        and completion == expected_requests * args.tokens
        and (active or 0) == 0
    )
    print(json.dumps({
        "streams": args.streams,
        "ok": run.ok,
        "errors": run.errors,
        "error_samples": run.error_samples,
        "peak_open": run.peak_open,
        "peak_rss_kb": run.peak_rss_kb,
        "bytes": run.bytes_received,
        "seconds": round(elapsed, 2),
        "metrics_status": status,
        "requests_total": requests,
        "prompt_tokens_total": prompt,
        "completion_tokens_total": completion,
        "active_after": active,
        "expected": {"requests": expected_requests, "prompt": expected_requests * args.prompt_tokens,
                     "completion": expected_requests * args.tokens},
        "counters_exact": counters_exact,
    }))


if __name__ == "__main__":
    asyncio.run(main())
