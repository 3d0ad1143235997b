/// The live status page (`GET /` on the metrics port): one self-contained HTML document, its style and
/// script inline, nothing fetched from anywhere but `status.json` beside it, every two seconds. Numbers go
/// into the page through `textContent` only, and every number shown carries its raw value in `data-value`
/// (with the JSON field it comes from in `data-key`), for tests and for anyone scripting the page.
///
/// The Content-Security-Policy allows exactly this style and this script, by their SHA-256.
enum StatusPage {
    static let html: [UInt8] = Array(
        (Self.head + "<style>" + Self.style + "</style>\n</head>\n" + Self.body + "<script>" + Self.script + "</script>\n</body>\n</html>\n").utf8
    )

    static let contentSecurityPolicy =
        "default-src 'none'; connect-src 'self'; "
        + "style-src 'sha256-\(Base64.encode(SHA256.digest(Self.style.utf8)))'; "
        + "script-src 'sha256-\(Base64.encode(SHA256.digest(Self.script.utf8)))'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    private static let head = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width,initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>Ollama status</title>

        """

    private static let style = """
        :root{color-scheme:light dark;--bg:#f5f6f8;--fg:#1b1e23;--muted:#667085;--card:#fff;--line:#e3e6eb;--ok:#0f7b55;--bad:#c4320a;--accent:#2563eb;--fill:rgba(37,99,235,.13)}
        @media (prefers-color-scheme:dark){:root{--bg:#0e1014;--fg:#e6e8eb;--muted:#98a2b3;--card:#171a20;--line:#2a2f39;--ok:#3ccb7f;--bad:#f97066;--accent:#60a5fa;--fill:rgba(96,165,250,.16)}}
        *{box-sizing:border-box}
        body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-variant-numeric:tabular-nums}
        header,main,footer{max-width:1240px;margin:0 auto;padding:10px 16px}
        h1{font-size:20px;margin:6px 0 0;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
        h2{font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:18px 0 8px}
        .meta{color:var(--muted);margin:4px 0 0}
        .pill{font-size:12px;font-weight:600;padding:2px 10px;border-radius:999px;background:var(--line)}
        .pill.ok{background:var(--ok);color:#fff}.pill.bad{background:var(--bad);color:#fff}
        .notice{color:var(--bad);margin:6px 0 0}
        .cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:10px}
        .card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 12px;min-width:0}
        .card h2{margin:0 0 2px}
        .big{font-size:24px;font-weight:650}
        .unit{color:var(--muted);margin-left:4px}
        .sub{color:var(--muted);font-size:12px}
        .spark{display:block;width:100%;height:30px;margin-top:6px;color:var(--accent)}
        td .spark{display:inline-block;width:84px;height:18px;margin:0 0 0 8px;vertical-align:middle}
        .spark polyline{fill:none;stroke:currentColor;stroke-width:1.5;vector-effect:non-scaling-stroke}
        .spark polygon{fill:var(--fill);stroke:none}
        .scroll{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:10px}
        table{border-collapse:collapse;width:100%;white-space:nowrap}
        th,td{padding:6px 10px;text-align:right;border-bottom:1px solid var(--line)}
        th{font-size:12px;color:var(--muted);font-weight:600}
        th.l,td.l{text-align:left}
        tbody tr:last-child td{border-bottom:0}
        td.name{font-weight:600;max-width:280px;overflow:hidden;text-overflow:ellipsis}
        .ok{color:var(--ok)}.bad{color:var(--bad)}.muted{color:var(--muted)}
        .empty{color:var(--muted);padding:10px 12px;margin:0}
        footer{color:var(--muted);font-size:12px;padding-bottom:24px}
        footer a{color:inherit}
        @media (max-width:600px){body{font-size:13px}.big{font-size:20px}th,td{padding:5px 7px}header,main,footer{padding:8px 10px}}
        """

    private static let body = """
        <body data-refreshes="0">
        <header>
        <h1>Ollama <span id="ollama-state" class="pill" data-key="ollama.up">…</span></h1>
        <p class="meta"><span id="ollama-version">connecting…</span> · proxy <span id="proxy-version"></span> · up <span id="uptime"></span> · <span id="updated"></span></p>
        <p id="notice" class="notice" hidden></p>
        </header>
        <main>
        <section class="cards" aria-label="All models">
        <div class="card"><h2>Generated</h2><span class="big" id="all-completion"></span><span class="unit">tok/s</span><svg id="all-completion-trend" class="spark"></svg></div>
        <div class="card"><h2>Prompt</h2><span class="big" id="all-prompt"></span><span class="unit">tok/s</span><svg id="all-prompt-trend" class="spark"></svg></div>
        <div class="card"><h2>Requests</h2><span class="big" id="all-requests"></span><span class="unit">/s</span><svg id="all-requests-trend" class="spark"></svg></div>
        <div class="card"><h2>In flight</h2><span class="big" id="all-in-flight"></span><div class="sub"><span id="all-total"></span> since start</div></div>
        <div class="card"><h2>Errors</h2><span class="big" id="all-errors"></span><div class="sub">of requests, last minute</div></div>
        <div class="card"><h2>First token</h2><span class="big" id="all-ttft-p50"></span><div class="sub">p50 · p95 <span id="all-ttft-p95"></span>, 5 min</div></div>
        </section>
        <section><h2>Loaded in Ollama</h2><div class="scroll"><table id="loaded"><thead><tr><th class="l">Model</th><th>Size</th><th>VRAM</th><th>Context</th><th>Unloads in</th></tr></thead><tbody></tbody></table><p class="empty" id="loaded-empty">No model loaded.</p></div></section>
        <section><h2>Models</h2><div class="scroll"><table id="models"><thead><tr><th class="l">Model</th><th>In flight</th><th>Generated tok/s</th><th>Prompt tok/s</th><th>Requests/s</th><th>Errors</th><th>First token p50</th><th>p95</th><th>Requests since start</th><th>Tokens since start</th></tr></thead><tbody></tbody></table><p class="empty" id="models-empty">No inference request yet.</p></div></section>
        <section><h2>Recent requests</h2><div class="scroll"><table id="recent"><thead><tr><th class="l">Time</th><th class="l">Model</th><th class="l">Endpoint</th><th>Tokens in → out</th><th>Duration</th><th>First token</th><th class="l">Outcome</th><th class="l client">Client</th></tr></thead><tbody></tbody></table><p class="empty" id="recent-empty">None yet.</p></div></section>
        </main>
        <footer>Rates over the last minute, first token over the last five minutes, trends over five minutes in ten-second steps; refreshed every 2 s from <a href="status.json">status.json</a>. Prompts and completions are never recorded.</footer>

        """

    private static let script = #"""
        "use strict";
        const $ = (id) => document.getElementById(id);
        const SVG = "http://www.w3.org/2000/svg";
        let refreshes = 0;
        const fmt = {
          rate: (v) => v == null ? "–" : v === 0 ? "0" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2),
          count: (v) => v == null ? "–" : v >= 1e6 ? (v / 1e6).toFixed(1) + "M" : v >= 1e4 ? (v / 1e3).toFixed(1) + "k" : String(v),
          ratio: (v) => v == null ? "–" : (v * 100).toFixed(v > 0 && v < 0.1 ? 1 : 0) + " %",
          span(s) {
            s = Math.max(0, Math.round(s));
            const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
            return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m " + x + "s" : x + "s";
          },
          seconds: (v) => v == null ? "–" : v < 1 ? Math.round(v * 1000) + " ms" : v < 60 ? v.toFixed(v < 10 ? 2 : 1) + " s" : fmt.span(v),
          bytes(v) {
            if (v == null) return "–";
            const units = ["B", "kB", "MB", "GB", "TB"];
            let i = 0;
            while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
            return v.toFixed(i > 0 && v < 10 ? 1 : 0) + " " + units[i];
          },
          time: (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false }),
        };

        function show(element, key, value, text) {
          element.textContent = text;
          element.dataset.key = key;
          element.dataset.value = value == null ? "" : String(value);
          return element;
        }

        function cell(row, key, value, text, className) {
          const td = row.insertCell();
          if (key) show(td, key, value, text); else td.textContent = text;
          if (className) td.className = className;
          return td;
        }

        function spark(svg, values) {
          const width = 100, height = 20, max = Math.max(0, ...values), last = values.length - 1;
          const points = values.map((v, i) => (i * width / last).toFixed(1) + "," + (max > 0 ? height - v / max * (height - 2) : height).toFixed(1)).join(" ");
          const area = document.createElementNS(SVG, "polygon"), line = document.createElementNS(SVG, "polyline");
          area.setAttribute("points", "0," + height + " " + points + " " + width + "," + height);
          line.setAttribute("points", points);
          svg.setAttribute("viewBox", "0 0 " + width + " " + height);
          svg.setAttribute("preserveAspectRatio", "none");
          svg.setAttribute("aria-hidden", "true");
          svg.replaceChildren(area, line);
          return svg;
        }

        function outcomeClass(outcome) {
          return outcome === "completed" ? "ok" : outcome === "client_disconnected" ? "muted" : "bad";
        }

        function renderCards(all) {
          const m = all.last_minute, t = all.time_to_first_token_s;
          show($("all-completion"), "all.last_minute.completion_tokens_per_s", m.completion_tokens_per_s, fmt.rate(m.completion_tokens_per_s));
          show($("all-prompt"), "all.last_minute.prompt_tokens_per_s", m.prompt_tokens_per_s, fmt.rate(m.prompt_tokens_per_s));
          show($("all-requests"), "all.last_minute.requests_per_s", m.requests_per_s, fmt.rate(m.requests_per_s));
          show($("all-in-flight"), "all.in_flight", all.in_flight, String(all.in_flight));
          show($("all-total"), "all.totals.requests", all.totals.requests, fmt.count(all.totals.requests) + " requests");
          show($("all-errors"), "all.last_minute.error_ratio", m.error_ratio, fmt.ratio(m.error_ratio));
          show($("all-ttft-p50"), "all.time_to_first_token_s.p50", t.p50, fmt.seconds(t.p50));
          show($("all-ttft-p95"), "all.time_to_first_token_s.p95", t.p95, fmt.seconds(t.p95));
          spark($("all-completion-trend"), all.trend.completion_tokens_per_s);
          spark($("all-prompt-trend"), all.trend.prompt_tokens_per_s);
          spark($("all-requests-trend"), all.trend.requests_per_s);
        }

        function renderLoaded(ollama) {
          const body = $("loaded").tBodies[0], rows = [];
          for (const model of ollama ? ollama.loaded_models : []) {
            const row = document.createElement("tr");
            row.dataset.loadedModel = model.name;
            cell(row, null, null, model.name, "l name").title = model.name;
            cell(row, "size_bytes", model.size_bytes, fmt.bytes(model.size_bytes));
            const share = model.size_bytes && model.vram_bytes != null ? " (" + Math.round(model.vram_bytes / model.size_bytes * 100) + " %)" : "";
            cell(row, "vram_bytes", model.vram_bytes, fmt.bytes(model.vram_bytes) + share);
            cell(row, "context_length", model.context_length, model.context_length == null ? "–" : fmt.count(model.context_length));
            cell(row, "expires_in_s", model.expires_in_s, model.expires_in_s == null ? "–" : fmt.span(model.expires_in_s));
            rows.push(row);
          }
          body.replaceChildren(...rows);
          $("loaded-empty").hidden = rows.length > 0;
        }

        function renderModels(models) {
          const body = $("models").tBodies[0], rows = [];
          for (const model of models) {
            const m = model.last_minute, t = model.time_to_first_token_s, totals = model.totals;
            const row = document.createElement("tr");
            row.dataset.model = model.model;
            cell(row, null, null, model.model, "l name").title = model.model;
            cell(row, "in_flight", model.in_flight, String(model.in_flight));
            const generated = cell(row, "last_minute.completion_tokens_per_s", m.completion_tokens_per_s, fmt.rate(m.completion_tokens_per_s));
            generated.appendChild(spark(document.createElementNS(SVG, "svg"), model.trend.completion_tokens_per_s)).setAttribute("class", "spark");
            cell(row, "last_minute.prompt_tokens_per_s", m.prompt_tokens_per_s, fmt.rate(m.prompt_tokens_per_s));
            cell(row, "last_minute.requests_per_s", m.requests_per_s, fmt.rate(m.requests_per_s));
            cell(row, "last_minute.error_ratio", m.error_ratio, fmt.ratio(m.error_ratio), m.error_ratio > 0 ? "bad" : "");
            cell(row, "time_to_first_token_s.p50", t.p50, fmt.seconds(t.p50));
            cell(row, "time_to_first_token_s.p95", t.p95, fmt.seconds(t.p95));
            const requests = cell(row, null, null, "");
            requests.append(show(document.createElement("span"), "totals.completed", totals.completed, fmt.count(totals.completed)), " ok · ",
              show(document.createElement("span"), "totals.failed", totals.failed, fmt.count(totals.failed)), " failed");
            const tokens = cell(row, null, null, "");
            tokens.append(show(document.createElement("span"), "totals.prompt_tokens", totals.prompt_tokens, fmt.count(totals.prompt_tokens)), " → ",
              show(document.createElement("span"), "totals.completion_tokens", totals.completion_tokens, fmt.count(totals.completion_tokens)));
            rows.push(row);
          }
          body.replaceChildren(...rows);
          $("models-empty").hidden = rows.length > 0;
        }

        function renderRecent(recent, showsClients) {
          const body = $("recent").tBodies[0], rows = [];
          for (const request of recent) {
            const row = document.createElement("tr");
            row.dataset.recent = "";
            cell(row, "time", request.time, fmt.time(request.time), "l");
            cell(row, "model", request.model, request.model, "l name").title = request.model;
            cell(row, "endpoint", request.endpoint, request.endpoint + (request.stream ? " (stream)" : ""), "l");
            const tokens = request.prompt_tokens == null && request.completion_tokens == null ? "–"
              : fmt.count(request.prompt_tokens ?? 0) + " → " + fmt.count(request.completion_tokens ?? 0);
            cell(row, "completion_tokens", request.completion_tokens, tokens);
            cell(row, "duration_s", request.duration_s, fmt.seconds(request.duration_s));
            cell(row, "ttft_s", request.ttft_s, fmt.seconds(request.ttft_s));
            const status = request.status == null ? "" : " (" + request.status + ")";
            cell(row, "outcome", request.outcome, request.outcome.replaceAll("_", " ") + status, "l " + outcomeClass(request.outcome));
            if (showsClients) cell(row, "client", request.client, request.client ?? "–", "l");
            rows.push(row);
          }
          body.replaceChildren(...rows);
          $("recent-empty").hidden = rows.length > 0;
          for (const th of document.querySelectorAll("#recent th.client")) th.hidden = !showsClients;
        }

        function render(status) {
          const ollama = status.ollama, state = $("ollama-state");
          show(state, "ollama.up", ollama ? (ollama.up ? 1 : 0) : "", ollama ? (ollama.up ? "up" : "down") : "not asked");
          state.className = "pill" + (ollama ? (ollama.up ? " ok" : " bad") : "");
          $("ollama-version").textContent = ollama && ollama.version ? "version " + ollama.version : ollama && !ollama.up ? (ollama.problem || "not answering") : "version unknown";
          $("proxy-version").textContent = status.proxy_version;
          $("uptime").textContent = fmt.span(status.uptime_s);
          renderCards(status.all);
          renderLoaded(ollama);
          renderModels(status.models);
          renderRecent(status.recent, status.shows_clients);
          $("updated").textContent = "updated " + fmt.time(status.time);
          document.body.dataset.refreshes = String(++refreshes);
        }

        function notice(text) {
          $("notice").textContent = text || "";
          $("notice").hidden = !text;
        }

        async function refresh() {
          if (!document.hidden) {
            try {
              const response = await fetch("status.json", { cache: "no-store", credentials: "same-origin" });
              if (response.status === 401) notice("Not authorized any more: open this page again as /?token=<metrics token>.");
              else if (!response.ok) notice("status.json answered " + response.status + "; showing the last numbers.");
              else { render(await response.json()); notice(""); }
            } catch (error) {
              notice("The proxy does not answer; showing the last numbers.");
            }
          }
          setTimeout(refresh, 2000);
        }
        refresh();

        """#
}

/// Base64 (RFC 4648, with padding), for the hashes of a Content-Security-Policy.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        for start in stride(from: 0, to: bytes.count, by: 3) {
            let chunk = bytes[start..<min(start + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for index in 0..<4 {
                output.append(index <= chunk.count ? Self.alphabet[Int(value >> (18 - 6 * UInt32(index)) & 0x3F)] : UInt8(ascii: "="))
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
