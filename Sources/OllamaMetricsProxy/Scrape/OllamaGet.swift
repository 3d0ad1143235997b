import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One `GET` to Ollama on a connection of its own, given up after a deadline: what the metrics listener
/// asks Ollama at scrape time (`/api/ps`, `/api/version`). Goes through the same upstream configuration as
/// proxied traffic: base path before the path, `Host` the upstream's.
enum OllamaGet {
    struct Response: Sendable {
        var status: Int
        var body: ByteBuffer
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Answers larger than this are not what was asked for.
    static let maxBodyBytes = 4 << 20

    /// The status and body of `GET <base path><path>`, or a failure: cannot connect, closed early, no
    /// complete answer within `timeout` (a hung Ollama that accepts and never answers), body too large.
    static func fetch(
        _ path: String, upstream: UpstreamURL, on eventLoop: EventLoop, timeout: TimeAmount
    ) -> EventLoopFuture<Response> {
        let promise = eventLoop.makePromise(of: Response.self)
        let once = Once()
        let deadline = eventLoop.scheduleTask(in: timeout) {
            if once.claim() { promise.fail(Failure(description: "no answer within \(Self.words(timeout))")) }
        }
        let connected = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, once: once))
                }
            }
            .connect(host: upstream.host, port: upstream.port)
        connected.whenComplete { result in
            switch result {
            case .failure(let error):
                if once.claim() { promise.fail(error) }
            case .success(let channel):
                var headers = HTTPHeaders()
                headers.add(name: "Host", value: upstream.hostHeader)
                headers.add(name: "Accept", value: "application/json")
                headers.add(name: "Connection", value: "close")
                let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: upstream.basePath + path, headers: headers)
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            }
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        return promise.futureResult
    }

    /// A failed fetch in a few words a person can act on ("connection refused", "no answer within 1 s").
    static func reason(_ error: Error) -> String {
        switch error {
        case let failure as Failure:
            return failure.description
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return Self.reason(first.error) }
            return error.dnsAAAAError.map(Self.reason) ?? error.dnsAError.map(Self.reason) ?? "cannot connect"
        case let error as IOError:
            return "cannot connect: " + String(cString: strerror(error.errnoCode)).lowercased()
        case ChannelError.connectTimeout(let timeout):
            return "cannot connect within \(timeout)"
        default:
            return "\(error)"
        }
    }

    /// `1 s`, `250 ms`.
    static func words(_ time: TimeAmount) -> String {
        let milliseconds = time.nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }

    /// Lets exactly one of the racing outcomes (answer, connection lost, deadline) complete the promise.
    final class Once: Sendable {
        private let done = NIOLockedValueBox(false)

        func claim() -> Bool {
            self.done.withLockedValue { done in
                defer { done = true }
                return !done
            }
        }
    }

    private final class ResponseCollector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart

        private let promise: EventLoopPromise<Response>
        private let once: Once
        private var status: Int?
        private var body = ByteBuffer()

        init(promise: EventLoopPromise<Response>, once: Once) {
            self.promise = promise
            self.once = once
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.status = Int(head.status.code)
            case .body(var part):
                guard self.body.readableBytes + part.readableBytes <= OllamaGet.maxBodyBytes else {
                    self.fail("answer larger than \(OllamaGet.maxBodyBytes) bytes", context: context)
                    return
                }
                self.body.writeBuffer(&part)
            case .end:
                if let status = self.status, self.once.claim() {
                    self.promise.succeed(Response(status: status, body: self.body))
                }
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.fail("connection closed before the answer ended", context: context)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            if self.once.claim() { self.promise.fail(error) }
            context.close(promise: nil)
        }

        private func fail(_ message: String, context: ChannelHandlerContext) {
            if self.once.claim() { self.promise.fail(Failure(description: message)) }
            context.close(promise: nil)
        }
    }
}
