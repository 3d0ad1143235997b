import Testing

@testable import OllamaSimulator

/// `/api/version`, `/api/tags`, `/api/ps`, `/api/show`, `/api/pull`, blobs.
@Suite struct ModelManagementTests {
    @Test func versionAndHeadVersion() async throws {
        try await withSimulator { ollama in
            let version = try await ollama.exchange("GET", "/api/version")
            #expect(
                version.head
                    == expectedHead(
                        "HTTP/1.1 200 OK",
                        [
                            ("Content-Type", "application/json; charset=utf-8"), ("Date", fixtureDate),
                            ("Content-Length", "20"),
                        ]
                    )
            )
            let head = try await ollama.exchange("HEAD", "/api/version")
            #expect(head.header("Content-Length") == "20")
            #expect(head.body.isEmpty)
        }
    }

    @Test func tagsListTheCatalogue() async throws {
        try await withSimulator { ollama in
            let tags = try await ollama.exchange("GET", "/api/tags")
            #expect(
                tags.bodyText.hasPrefix(
                    #"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-06-01T12:00:00Z","size":2019393189,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}},"#
                )
            )
        }
    }

    @Test func psListsTheModelsUsedForInference() async throws {
        try await withSimulator { ollama in
            #expect(try await ollama.exchange("GET", "/api/ps").bodyText == #"{"models":[]}"#)
            _ = try await ollama.post("/api/generate", #"{"model":"llama3.2","prompt":"p"}"#)
            let ps = try await ollama.exchange("GET", "/api/ps")
            #expect(ps.bodyText.hasPrefix(#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","size":"#))
            #expect(ps.bodyText.contains(#""expires_at":"2025-06-01T12:05:00Z","size_vram":"#))
        }
    }

    @Test func showDescribesAModelOr404s() async throws {
        try await withSimulator { ollama in
            let show = try await ollama.post("/api/show", #"{"model":"llama3.2"}"#)
            let object = try parseJSON(show.bodyText)
            guard case .object(let members) = object else {
                Issue.record("not an object")
                return
            }
            #expect(
                members.map(\.key) == [
                    "license", "modelfile", "parameters", "template", "details", "model_info", "capabilities",
                    "modified_at",
                ]
            )
            #expect(show.bodyText.contains(#"\u003c|eot_id|\u003e"#))
            let missing = try await ollama.post("/api/show", #"{"model":"missing-model"}"#)
            #expect(missing.status == 404)
            #expect(missing.bodyText == #"{"error":"model 'missing-model:latest' not found"}"#)
            let empty = try await ollama.post("/api/show", "{}")
            #expect(empty.bodyText == #"{"error":"model is required"}"#)
        }
    }

    @Test func pullStreamsProgressLines() async throws {
        try await withSimulator { ollama in
            let pull = try await ollama.post("/api/pull", #"{"model":"llama3.2"}"#, headers: [("X-Sim-Pull-Delay-Ms", "1")])
            #expect(pull.header("Content-Type") == "application/x-ndjson")
            #expect(pull.chunks?.count == 7)
            #expect(pull.chunkTexts.first == #"{"status":"pulling manifest"}"# + "\n")
            #expect(pull.chunkTexts[2].contains(#""total":2019393189,"completed":1009696594}"#))
            #expect(pull.chunkTexts.last == #"{"status":"success"}"# + "\n")

            let quiet = try await ollama.post("/api/pull", #"{"model":"llama3.2","stream":false}"#)
            #expect(
                quiet.head
                    == expectedHead(
                        "HTTP/1.1 200 OK",
                        [("Content-Type", "application/json"), ("Date", fixtureDate), ("Content-Length", "20")]
                    )
            )
            #expect(quiet.bodyText == #"{"status":"success"}"#)

            let missing = try await ollama.post("/api/pull", #"{"model":"missing-x"}"#)
            #expect(
                missing.chunkTexts == [
                    #"{"status":"pulling manifest"}"# + "\n",
                    #"{"error":"pull model manifest: file does not exist"}"# + "\n",
                ]
            )
        }
    }

    @Test func blobUploadIsCountedAndThenFound() async throws {
        try await withSimulator { ollama in
            let digest = "sha256:" + String(repeating: "ab", count: 32)
            let before = try await ollama.exchange("HEAD", "/api/blobs/\(digest)")
            #expect(before.status == 404)
            #expect(before.header("Content-Type") == "application/json; charset=utf-8")

            let payload = String(repeating: "z", count: 300_000)
            let upload = try await ollama.exchange("POST", "/api/blobs/\(digest)", body: payload)
            #expect(
                upload.head
                    == expectedHead("HTTP/1.1 201 Created", [("Date", fixtureDate), ("Content-Length", "0")])
            )
            #expect(ollama.uploadedBlobs[digest] == 300_000)
            let recorded = try #require(ollama.requests.last)
            #expect(recorded.bodyByteCount == 300_000)
            #expect(recorded.body.isEmpty)

            let after = try await ollama.exchange("HEAD", "/api/blobs/\(digest)")
            #expect(after.head == expectedHead("HTTP/1.1 200 OK", [("Date", fixtureDate)]))
        }
    }
}
