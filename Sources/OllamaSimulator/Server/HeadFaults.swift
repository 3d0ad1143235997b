/// The faults injected around a response's head, whatever the endpoint: a head cut short by a reset
/// (`X-Sim-Reset-Mid-Head`) and a stall once the head is out (`X-Sim-Stall-After-Head-Ms`).
struct HeadFaults: ResponseProducer {
    private var rest: any ResponseProducer
    private let resetMidHeadBytes: Int?
    private let stallAfterHead: Duration
    /// Steps owed after the head, reversed.
    private var pending: [ResponseStep] = []
    private var isCut = false

    /// `rest` itself when the behaviour asks for no head fault.
    static func wrapping(_ rest: any ResponseProducer, behaviour: SimulatorBehaviour) -> any ResponseProducer {
        guard behaviour.resetMidHeadBytes != nil || behaviour.stallAfterHead > .zero else { return rest }
        return HeadFaults(rest: rest, resetMidHeadBytes: behaviour.resetMidHeadBytes, stallAfterHead: behaviour.stallAfterHead)
    }

    private init(rest: any ResponseProducer, resetMidHeadBytes: Int?, stallAfterHead: Duration) {
        self.rest = rest
        self.resetMidHeadBytes = resetMidHeadBytes
        self.stallAfterHead = stallAfterHead
    }

    mutating func nextStep(clock: SimulatorClock) -> ResponseStep? {
        if let step = pending.popLast() { return step }
        if isCut { return nil }
        let step = rest.nextStep(clock: clock)
        guard case .head(let head) = step else { return step }
        if let byteCount = resetMidHeadBytes {
            isCut = true
            pending = [.reset]
            return .headFragment(head, byteCount: byteCount)
        }
        // The head goes out on its own (it would otherwise wait for the first chunk), then nothing for a while.
        pending = [.wait(stallAfterHead.timeAmount), .flush]
        return step
    }
}
