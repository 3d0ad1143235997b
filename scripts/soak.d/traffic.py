"""The soak's requests: what each kind sends, what its client does, what it saw, and what the proxy must record.

Standard library only: asyncio streams and HTTP/1.1 by hand, so that a client can stop at any byte (mid-head,
mid-body, before the response head, mid-stream, right after the usage) and can tell an orderly close from a reset.

Every inference kind uses a model name of its own (`soak-<kind>`), so the proxy's metrics can be compared with
what the clients saw kind by kind, outcome by outcome.
"""

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

# How the client behaves once the request is written (or instead of writing all of it).
READ = "read"                          # read the whole response
PARTIAL_HEAD = "partial_head"          # send part of the request head, hang up
HEAD_ONLY = "head_only"                # send the head of a request that has a body, hang up
PARTIAL_BODY = "partial_body"          # send the head and half the body, hang up
BEFORE_RESPONSE = "before_response"    # send the request, hang up before the response head (Ollama is slow)
AFTER_HEAD = "after_head"              # hang up once the response head arrived (Ollama stalls after it)
MID_STREAM = "mid_stream"              # hang up after a few events of a long stream
AFTER_USAGE = "after_usage"            # hang up right after the usage event, before the end (as the openai SDK)

# The proxy's outcomes (README, Metrics): `completed` or a failure reason.
COMPLETED = "completed"


@dataclass(frozen=True)
class Kind:
    """One kind of request."""
    name: str
    method: str
    path: str
    dialect: str = "none"        # native | openai | anthropic | none (not inspected)
    streaming: bool = False
    action: str = READ
    headers: tuple = ()
    tokens: tuple = (3, 3)       # X-Sim-Tokens, drawn from this range
    prompt_tokens: int = 7
    include_usage: bool = False  # OpenAI streams: ask for the usage chunk (else the proxy withholds it)
    # Paused around the simulator restart: the client's own timing decides the outcome, so a request that
    # meets Ollama going away at the same moment could end either way.
    racy: bool = False

    @property
    def model(self):
        return f"soak-{self.name}"

    @property
    def is_inference(self):
        return self.method == "POST" and self.dialect != "none"

    @property
    def sends_whole_request(self):
        return self.action not in (PARTIAL_HEAD, HEAD_ONLY, PARTIAL_BODY)


def chat_body(kind, text):
    body = {"model": kind.model, "messages": [{"role": "user", "content": text}], "stream": kind.streaming}
    if kind.path == "/v1/messages":
        body["max_tokens"] = 4096
    if kind.include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def request_body(kind, index):
    if kind.method != "POST":
        return b""
    if kind.path == "/api/generate":
        body = {"model": kind.model, "prompt": f"soak {index}", "stream": kind.streaming}
    else:
        body = chat_body(kind, f"soak {index}")
    return json.dumps(body, separators=(",", ":")).encode()


# --- What a client saw ------------------------------------------------------------------------------------


@dataclass
class Seen:
    """What the client of one request saw."""
    kind: Kind
    tokens: int
    sent_whole: bool = False      # the whole request (head and body) was written
    status: int | None = None
    headers: dict = field(default_factory=dict)
    events: int = 0               # body events (NDJSON lines, SSE events) received whole
    usage: bool = False           # the usage-bearing event arrived whole
    usage_counts: tuple | None = None  # (prompt, completion) as reported, when readable
    done_marker: bool = False     # OpenAI `data: [DONE]`
    finish_seen: bool = False     # an OpenAI chunk with a finish_reason (withheld usage follows it)
    error_event: bool = False     # Ollama reported an error inside the 2xx body
    ended: bool = False           # the response ended properly (length reached, chunked terminator)
    cut: str | None = None        # "eof" or "reset": the connection ended before the response did
    hung_up: bool = False         # this client closed first
    timed_out: bool = False       # the client gave up (a hang: always a failure of the run)
    problem: str | None = None    # something no correct proxy does (wrong bytes, no response at all…)
    started: float = 0.0
    finished: float = 0.0
    bytes_received: int = 0

    @property
    def model_label(self):
        """Its kind's model: Ollama accepted every kind's model before the load (`Load.accept_models`), so the
        proxy records each request under it, whatever Ollama answers this one."""
        return self.kind.model

    def expected_outcome(self):
        """The proxy's outcome for this request as the client saw it; None when it is not an inference request
        the proxy counts; "ambiguous" when the client cannot know (see README of the soak)."""
        kind = self.kind
        if not kind.is_inference or not self.sent_whole:
            return None
        if self.status is None:
            # No response head: only a client that hung up first (or gave up) is explained.
            return "client_disconnected" if (self.hung_up or self.timed_out) else "unexplained"
        if self.status == 502:  # the simulator is never asked for a 502: this is the proxy's own
            return "upstream_unreachable"
        if not 200 <= self.status < 300:
            if 400 <= self.status < 500:
                return "http_4xx"
            if 500 <= self.status < 600:
                return "http_5xx"
            return "http_other"
        if self.usage:
            return COMPLETED
        if self.error_event:
            return "stream_error"
        withheld = kind.dialect == "openai" and kind.streaming and not kind.include_usage
        if withheld and self.done_marker:
            return COMPLETED  # the usage chunk went by in the proxy just before [DONE]
        if self.ended:
            return "no_usage"
        if self.hung_up or self.timed_out:
            return "client_disconnected"
        if self.cut:
            if withheld and self.finish_seen:
                return "ambiguous"  # cut between the finish chunk and [DONE]: the withheld usage may have passed
            return "upstream_disconnected"
        return "unexplained"


class EventWatcher:
    """Reads a response body as it arrives and notes the events that decide the outcome."""

    def __init__(self, seen):
        self.seen = seen
        self.pending = bytearray()
        kind = seen.kind
        self.separator = b"\n" if kind.dialect == "native" else b"\n\n"

    def feed(self, data):
        self.pending += data
        while True:
            end = self.pending.find(self.separator)
            if end < 0:
                return
            event = bytes(self.pending[:end])
            del self.pending[:end + len(self.separator)]
            if event.strip():
                self.seen.events += 1
                self.event(event)

    def whole_body(self, body):
        """A non-streaming body, complete."""
        seen = self.seen
        try:
            document = json.loads(body)
        except ValueError:
            seen.problem = f"unreadable body {body[:120]!r}"
            return
        if seen.kind.dialect == "native":
            self.native(document)
        elif "usage" in document and document["usage"]:
            usage = document["usage"]
            seen.usage = True
            if seen.kind.dialect == "openai":
                seen.usage_counts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
            else:
                seen.usage_counts = (usage.get("input_tokens"), usage.get("output_tokens"))

    def native(self, document):
        if document.get("error"):
            self.seen.error_event = True
        elif document.get("done") is True:
            self.seen.usage = True
            self.seen.usage_counts = (document.get("prompt_eval_count"), document.get("eval_count"))

    def event(self, event):
        seen = self.seen
        if seen.kind.dialect == "native":
            if b'"done":true' in event or b'"error"' in event:
                try:
                    self.native(json.loads(event))
                except ValueError:
                    seen.problem = f"unreadable line {event[:120]!r}"
            return
        name, data = b"", b""
        for line in event.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if data == b"[DONE]":
            seen.done_marker = True
            return
        if name == b"error" or data.startswith(b'{"error"'):
            seen.error_event = True
            return
        if seen.kind.dialect == "openai":
            if b'"finish_reason":"' in data:
                seen.finish_seen = True
            if b'"usage":{' in data:
                usage = json.loads(data)["usage"]
                seen.usage = True
                seen.usage_counts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
        elif name == b"message_delta":
            usage = json.loads(data).get("usage") or {}
            seen.usage = True
            seen.usage_counts = (usage.get("input_tokens"), usage.get("output_tokens"))


# --- One request over one connection ----------------------------------------------------------------------


class Connection:
    """A client connection to the proxy, kept alive across requests while the responses allow it."""

    def __init__(self, port):
        self.port = port
        self.reader = None
        self.writer = None
        self.buffer = bytearray()

    @property
    def is_open(self):
        return self.writer is not None

    async def open(self):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
            self.buffer.clear()

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.reader = None

    async def more(self):
        """Reads what arrived into the buffer; raises EOFError or ConnectionResetError when it ended."""
        try:
            data = await self.reader.read(65536)
        except ConnectionResetError:
            raise
        except OSError as error:  # e.g. EPIPE seen on read: the proxy reset the connection
            raise ConnectionResetError(str(error)) from error
        if not data:
            raise EOFError
        self.buffer += data
        return len(data)


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def exchange(connection, kind, index, tokens, timeout):
    """Runs one request of `kind` on `connection` (opened if needed) and returns what its client saw. The
    connection is left open only when the response ended properly and allows another request."""
    seen = Seen(kind=kind, tokens=tokens, started=time.monotonic())
    try:
        await asyncio.wait_for(_exchange(connection, kind, index, seen), timeout)
    except asyncio.TimeoutError:
        seen.timed_out = True
        connection.close()
    except (ConnectionResetError, BrokenPipeError):
        if seen.sent_whole:
            seen.cut = seen.cut or "reset"
        elif kind.sends_whole_request:
            seen.problem = "the proxy closed the connection before the request was written"
        connection.close()
    except EOFError:
        if seen.sent_whole:
            seen.cut = seen.cut or "eof"
        elif kind.sends_whole_request:
            seen.problem = "the proxy closed the connection before the request was written"
        connection.close()
    except OSError as error:  # refused, out of descriptors…: the request never reached the proxy
        seen.problem = f"cannot connect to the proxy: {error}"
        connection.close()
    seen.finished = time.monotonic()
    return seen


def request_head(kind, port, body, tokens):
    headers = [
        f"{kind.method} {kind.path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"X-Sim-Tokens: {tokens}",
        f"X-Sim-Prompt-Tokens: {kind.prompt_tokens}",
    ]
    # A tuple of values means one of them, drawn for each request.
    headers += [f"{name}: {random.choice(value) if isinstance(value, tuple) else value}" for name, value in kind.headers]
    if kind.method == "POST":
        headers += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode()


async def _exchange(connection, kind, index, seen):
    await connection.open()
    body = request_body(kind, index)
    head = request_head(kind, connection.port, body, seen.tokens)
    writer = connection.writer

    if not kind.sends_whole_request:
        # Part of the request, a pause, and the client is gone.
        part = {PARTIAL_HEAD: head[:random.randint(1, len(head) - 3)], HEAD_ONLY: head,
                PARTIAL_BODY: head + body[:len(body) // 2]}[kind.action]
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(random.choice((0, 0.05, 0.3)))
        seen.hung_up = True
        connection.close()
        return

    writer.write(head + body)
    await writer.drain()
    seen.sent_whole = True

    if kind.action == BEFORE_RESPONSE:
        # Ollama holds the head for seconds (X-Sim-Header-Delay-Ms); anything that arrives meanwhile is read.
        try:
            await asyncio.wait_for(read_head(connection, seen), 0.2)
        except asyncio.TimeoutError:
            seen.hung_up = True
            connection.close()
            return
        await read_body(connection, seen, stop=None)
        return

    await read_head(connection, seen)
    if kind.action == AFTER_HEAD and 200 <= seen.status < 300:
        await asyncio.sleep(0.2)  # Ollama stalls for seconds after its head (X-Sim-Stall-After-Head-Ms)
        seen.hung_up = True
        connection.close()
        return
    stop = None
    if kind.action == MID_STREAM:
        stop = lambda: seen.events >= 3  # noqa: E731
    elif kind.action == AFTER_USAGE:
        stop = lambda: seen.usage  # noqa: E731
    await read_body(connection, seen, stop)


async def read_head(connection, seen):
    while True:
        end = connection.buffer.find(b"\r\n\r\n")
        if end >= 0:
            raw = bytes(connection.buffer[:end])
            del connection.buffer[:end + 4]
            status, headers = parse_head(raw)
            if status == 100:
                continue
            seen.status = status
            seen.headers = headers
            return
        seen.bytes_received += await connection.more()


async def read_body(connection, seen, stop):
    """Reads the body by its framing, feeding the watcher; stops early (hanging up) when `stop()` holds."""
    headers = seen.headers
    watcher = EventWatcher(seen)
    streams = seen.kind.streaming and 200 <= seen.status < 300
    keeps_alive = headers.get("connection", "").lower() != "close"
    collected = bytearray()

    def take(data):
        if streams:
            watcher.feed(data)
        else:
            collected.extend(data)

    def hang_up_if_asked():
        if stop is not None and stop():
            seen.hung_up = True
            connection.close()
            return True
        return False

    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            # One chunk: size line, data, CRLF. Whatever is buffered is used before reading more.
            line_end = connection.buffer.find(b"\r\n")
            if line_end < 0:
                seen.bytes_received += await connection.more()
                continue
            size = int(bytes(connection.buffer[:line_end]).split(b";")[0], 16)
            if size == 0:
                while len(connection.buffer) < line_end + 4:  # no trailers here: the final CRLF follows
                    seen.bytes_received += await connection.more()
                if connection.buffer[line_end + 2:line_end + 4] != b"\r\n":
                    seen.problem = "trailers or garbage after the last chunk"
                del connection.buffer[:line_end + 4]
                break
            while len(connection.buffer) < line_end + 2 + size + 2:
                seen.bytes_received += await connection.more()
            take(bytes(connection.buffer[line_end + 2:line_end + 2 + size]))
            del connection.buffer[:line_end + 2 + size + 2]
            if hang_up_if_asked():
                return
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while len(connection.buffer) < remaining:
            seen.bytes_received += await connection.more()
        take(bytes(connection.buffer[:remaining]))
        del connection.buffer[:remaining]
    else:
        keeps_alive = False
        try:
            while True:
                seen.bytes_received += await connection.more()
        except EOFError:
            pass
        take(bytes(connection.buffer))
        connection.buffer.clear()

    seen.ended = True
    if seen.status == 502 and b"Ollama" not in collected:
        seen.problem = f"a 502 that is not the proxy's: {bytes(collected[:120])!r}"
    if not streams and 200 <= seen.status < 300 and seen.kind.is_inference:
        watcher.whole_body(bytes(collected))
    if hang_up_if_asked():
        return
    if not keeps_alive:
        connection.close()


def check_usage(seen):
    """A completed request must report the counts the simulator was asked for."""
    if seen.usage and seen.usage_counts is not None:
        prompt, completion = seen.usage_counts
        if (prompt, completion) != (seen.kind.prompt_tokens, seen.tokens):
            seen.problem = f"usage {prompt}/{completion}, asked for {seen.kind.prompt_tokens}/{seen.tokens}"
