import Testing
@testable import OllamaMetricsProxy
@Test func placeholder() { #expect(InferenceEndpoint(path: "/api/chat") == .chat) }
