import NIOCore

/// A parsed Prometheus text exposition: samples by name and label set. Parsed, never compared as text,
/// because the registry emits families in no fixed order.
struct MetricsScrape: Sendable {
    struct Sample: Sendable {
        var name: String
        var labels: [String: String]
        var value: Double
    }
    var samples: [Sample] = []
    var help: [String: String] = [:]
    var type: [String: String] = [:]

    init(text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                if let space = rest.firstIndex(of: " ") {
                    self.help[String(rest[..<space])] = String(rest[rest.index(after: space)...])
                }
                continue
            }
            if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                if parts.count == 2 { self.type[String(parts[0])] = String(parts[1]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let lastSpace = line.lastIndex(of: " ") else { continue }
            let series = line[..<lastSpace]
            let value = Double(line[line.index(after: lastSpace)...]) ?? .nan
            var name = String(series)
            var labels: [String: String] = [:]
            if let brace = series.firstIndex(of: "{") {
                name = String(series[..<brace])
                labels = Self.parseLabels(series[series.index(after: brace)..<series.index(before: series.endIndex)])
            }
            self.samples.append(Sample(name: name, labels: labels, value: value))
        }
    }

    private static func parseLabels(_ text: Substring) -> [String: String] {
        var labels: [String: String] = [:]
        var index = text.startIndex
        while index < text.endIndex {
            guard let equals = text[index...].firstIndex(of: "=") else { break }
            let key = String(text[index..<equals]).trimmingCharacters(in: ",")
            var cursor = text.index(equals, offsetBy: 2)  // skip ="
            var value = ""
            while cursor < text.endIndex, text[cursor] != "\"" {
                if text[cursor] == "\\" {
                    cursor = text.index(after: cursor)
                    value.append(text[cursor] == "n" ? "\n" : text[cursor])
                } else {
                    value.append(text[cursor])
                }
                cursor = text.index(after: cursor)
            }
            labels[key] = value
            index = text.index(after: cursor)
            if index < text.endIndex, text[index] == "," { index = text.index(after: index) }
        }
        return labels
    }

    /// The value of the one sample with this name and exactly these labels, or nil.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        self.samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// The samples of the registry's families: those requests move, without the ones computed at scrape time
    /// (Ollama's status, the build, the process) and the proxy's own (refusals, open connections).
    var requestSamples: [Sample] {
        let scrapeTime = ["ollama_up", "ollama_version_info", "ollama_loaded_model_", "ollama_metrics_proxy_", "process_"]
        return self.samples.filter { sample in !scrapeTime.contains { sample.name.hasPrefix($0) } }
    }

    /// All samples of one name.
    func samples(named name: String) -> [Sample] {
        self.samples.filter { $0.name == name }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.first == set { text = text.dropFirst() }
        while text.last == set { text = text.dropLast() }
        return String(text)
    }
}
