#!/usr/bin/env python3
"""Writes the nginx configurations of scripts/bench and the bodies every route must answer.

    nginx_conf.py DIR UPSTREAM_PORT PROXY_PORT SIM_PROXY_PORT SIM_PORT

DIR/upstream/nginx.conf  one worker acting as a fast fake Ollama on 127.0.0.1:UPSTREAM_PORT:
                         /api/generate (10 NDJSON lines), /v1/chat/completions (SSE with the usage-only
                         chunk and [DONE]), /api/tags (JSON). Bodies byte for byte as Ollama writes them.
DIR/proxy/nginx.conf     one worker, the proxy_pass reference: 127.0.0.1:PROXY_PORT -> the upstream above,
                         127.0.0.1:SIM_PROXY_PORT -> the simulator on SIM_PORT; keep-alive upstreams,
                         buffering off.
DIR/expected/*           what a client must receive: generate.ndjson, chat.sse (as sent),
                         chat-withheld.sse (without the usage-only chunk, what the proxy forwards to a client
                         that did not ask for usage), tags.json.
"""
import json
import os
import sys

MODEL = "m"


def go_json(value):
    """Go encoding/json: compact, declaration order (dicts keep insertion order here)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def created_at(index):
    return "2025-06-01T12:00:00.%09dZ" % (1_000_000 + index * 20_004_321)


def generate_body():
    lines = []
    for index in range(9):
        lines.append(go_json({"model": MODEL, "created_at": created_at(index), "response": "tok", "done": False}))
    lines.append(go_json({
        "model": MODEL,
        "created_at": created_at(9),
        "response": "",
        "done": True,
        "done_reason": "stop",
        "context": list(range(128000, 128026)),
        "total_duration": 233_521_042,
        "load_duration": 12_455_167,
        "prompt_eval_count": 17,
        "prompt_eval_duration": 41_210_000,
        "eval_count": 9,
        "eval_duration": 179_855_875,
    }))
    return "".join(line + "\n" for line in lines)


def chat_events():
    """(event text, is the usage-only chunk) in Ollama's v0.32.6+ ChatWriter format."""
    base = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1748779200, "model": MODEL,
            "system_fingerprint": "fp_ollama"}
    events = []
    for index in range(9):
        delta = {"role": "assistant", "content": "tok"} if index == 0 else {"content": "tok"}
        chunk = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}])
        events.append(("data: " + go_json(chunk) + "\n\n", False))
    events.append(("data: " + go_json(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])) + "\n\n", False))
    usage = dict(base, choices=[], usage={"prompt_tokens": 17, "completion_tokens": 9, "total_tokens": 26})
    events.append(("data: " + go_json(usage) + "\n\n", True))
    events.append(("data: [DONE]\n\n", False))
    return events


def tags_body():
    return go_json({"models": [{
        "name": "llama3.2:latest",
        "model": "llama3.2:latest",
        "modified_at": "2025-05-30T10:11:12.345678901Z",
        "size": 2019393189,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                    "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
    }]})


def nginx_quote(text):
    """A single-quoted nginx string: nginx decodes \\n, \\\\ and \\' inside quotes; `$` would start a variable."""
    if "$" in text:
        raise ValueError("nginx would expand $ in a return body")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


COMMON = """worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    tcp_nodelay on;
{servers}
}}
"""


def main():
    directory, upstream_port, proxy_port, sim_proxy_port, sim_port = sys.argv[1:6]
    user = "user root root;" if os.geteuid() == 0 else ""
    generate = generate_body()
    events = chat_events()
    chat = "".join(text for text, _ in events)
    chat_withheld = "".join(text for text, usage_only in events if not usage_only)
    tags = tags_body()

    upstream_servers = f"""    server {{
        listen 127.0.0.1:{upstream_port} backlog=4096;
        # Ollama streams with Transfer-Encoding: chunked; `return` would send Content-Length. A sub_filter that
        # never matches makes nginx drop Content-Length and chunk the body, without changing a byte of it.
        location = /api/generate {{
            default_type application/x-ndjson;
            sub_filter_types application/x-ndjson; sub_filter 'BENCH-NEVER-MATCHES' '';
            return 200 {nginx_quote(generate)};
        }}
        location = /v1/chat/completions {{
            default_type text/event-stream;
            sub_filter_types text/event-stream; sub_filter 'BENCH-NEVER-MATCHES' '';
            return 200 {nginx_quote(chat)};
        }}
        location = /api/tags {{ default_type "application/json; charset=utf-8"; return 200 {nginx_quote(tags)}; }}
        location / {{ default_type text/plain; return 404 '404 page not found'; }}
    }}"""

    proxy_servers = f"""    upstream fake_ollama {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 10000000;
    }}
    upstream simulator {{
        server 127.0.0.1:{sim_port};
        keepalive 64;
        keepalive_requests 10000000;
    }}
    server {{
        listen 127.0.0.1:{proxy_port} backlog=4096;
        location / {{
            proxy_pass http://fake_ollama;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
    server {{
        listen 127.0.0.1:{sim_proxy_port} backlog=4096;
        location / {{
            proxy_pass http://simulator;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1:{sim_port};
            proxy_buffering off;
            proxy_read_timeout 3600s;
        }}
    }}"""

    for name, servers in (("upstream", upstream_servers), ("proxy", proxy_servers)):
        path = os.path.join(directory, name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "nginx.conf"), "w") as file:
            file.write(COMMON.format(user=user, dir=path, servers=servers))

    expected = os.path.join(directory, "expected")
    os.makedirs(expected, exist_ok=True)
    for name, body in (("generate.ndjson", generate), ("chat.sse", chat), ("chat-withheld.sse", chat_withheld),
                       ("tags.json", tags)):
        with open(os.path.join(expected, name), "w") as file:
            file.write(body)


if __name__ == "__main__":
    main()
