// A side that takes over a channel in use (after its predecessor crashed)
// resumes exactly where the predecessor stopped: docs/recovery.md.
import ArchangelCore
import Testing

@Suite struct ResumeTests {
    /// Sizes that alternate between inline payloads and pool payloads of 1 to 3 buffers.
    static func size(_ i: Int) -> Int { [40, 300, 90, 700, 8, 256][i % 6] }

    @Test func aNewReceiverResumesAfterTheLastMessageItsPredecessorConsumed() throws {
        let channel = try TestChannel(.small)
        var sent = 0
        var received: [UInt64] = []
        // Fill, drain half with the first receiver, repeat with successors.
        for generation in 0..<6 {
            let receiver = generation == 0 ? channel.receiver : try MessageReceiver(
                base: channel.base, layout: channel.layout, direction: channel.direction, notifier: NoNotifier(),
                resume: ResumePoint.receiver(base: channel.base, layout: channel.layout, direction: channel.direction))
            try channel.sender.reclaimBuffers()
            while case .sent = try channel.send(count: Self.size(sent), seed: UInt64(sent),
                                                priority: sent % 5 == 0 ? .high : .normal) { sent += 1 }
            for _ in 0..<3 {
                let got = try receiver.tryReceive { view -> (UInt64, Bool) in
                    var bytes = [UInt8](repeating: 0, count: view.count)
                    _ = bytes.withUnsafeMutableBytes { view.copyBytes(to: $0) }
                    let index = Int(view.sequence) - 1
                    return (view.sequence, bytes == pattern(Self.size(index), seed: UInt64(index)))
                }
                guard let got else { break }
                #expect(got.1)
                received.append(got.0)
            }
        }
        // The rest, by one more successor.
        let last = try MessageReceiver(base: channel.base, layout: channel.layout, direction: channel.direction,
                                       notifier: NoNotifier(),
                                       resume: ResumePoint.receiver(base: channel.base, layout: channel.layout,
                                                                    direction: channel.direction))
        while let sequence = try last.tryReceive({ $0.sequence }) { received.append(sequence) }
        #expect(Set(received).count == received.count, "nothing delivered twice")
        #expect(received.sorted() == Array(1...UInt64(sent)), "nothing lost")
    }

    @Test func aReturnCutShortBetweenConsumerIndexAndReturnsIsCompletedByTheSuccessor() throws {
        let channel = try TestChannel(.small)
        let returns = channel.lanes.pool.returns
        #expect(try channel.send(count: 700, seed: 1) == .sent)  // 3 buffers
        #expect(try channel.receive() != nil)
        #expect(channel.load64(returns.producer) == 3)
        // As if the process died after publishing its consumer index (step 3) and before step 4.
        channel.store64(0, returns.producer)
        let start = try ResumePoint.receiver(base: channel.base, layout: channel.layout, direction: channel.direction)
        #expect(start.completedReturns == 3)
        #expect(start.returnProducer == 3)
        #expect(channel.load64(returns.producer) == 3)
        try channel.sender.reclaimBuffers()
        #expect(channel.sender.poolBuffersInUse == 0, "every buffer came back")
        // Completing twice does nothing.
        #expect(try ResumePoint.receiver(base: channel.base, layout: channel.layout,
                                         direction: channel.direction).completedReturns == 0)
    }

    @Test func aReceiverThatDiedBeforeItsConsumerIndexGetsTheMessageAgainWithItsBuffersStillLent() throws {
        let channel = try TestChannel(.small)
        let normal = channel.ring(.normal)
        let delivered = channel.lanes.pool.returnIntent + 8
        #expect(try channel.send(count: 700, seed: 1) == .sent)
        let before = channel.load64(normal.consumer)
        #expect(try channel.receive() != nil)
        // As if the process died inside the closure: nothing published yet.
        channel.store64(before, normal.consumer)
        channel.store64(before, delivered)
        channel.store64(0, channel.lanes.pool.returns.producer)
        let start = try ResumePoint.receiver(base: channel.base, layout: channel.layout, direction: channel.direction)
        #expect(start.completedReturns == 0, "the message was not consumed: its buffers stay lent")
        let successor = MessageReceiver(base: channel.base, layout: channel.layout, direction: channel.direction,
                                        notifier: NoNotifier(), resume: start)
        let again = try successor.tryReceive { view -> [UInt8] in
            var bytes = [UInt8](repeating: 0, count: view.count)
            _ = bytes.withUnsafeMutableBytes { view.copyBytes(to: $0) }
            return bytes
        }
        #expect(again == pattern(700, seed: 1))
        try channel.sender.reclaimBuffers()
        #expect(channel.sender.poolBuffersInUse == 0)
    }

    @Test func aNewSenderKeepsTheBuffersInFlightAndFreesTheRestIncludingAnAbandonedLoan() throws {
        let channel = try TestChannel(.small)  // 8 buffers of 256 bytes
        #expect(try channel.send(count: 700, seed: 1) == .sent)   // buffers 0, 1, 2
        #expect(try channel.send(count: 300, seed: 2) == .sent)   // buffers 3, 4
        #expect(try channel.sender.tryBeginLoan(capacity: 512))   // buffers 5, 6: abandoned by the crash
        #expect(try channel.receive() != nil)                     // 0, 1, 2 come back, unreclaimed
        let start = try ResumePoint.sender(base: channel.base, layout: channel.layout, direction: channel.direction)
        #expect(start.buffersInFlight == [0, 1, 2, 3, 4], "two unread in a record, three on their way back")
        #expect(start.lastSequence == 2)
        let successor = MessageSender(base: channel.base, layout: channel.layout, direction: channel.direction,
                                      notifier: NoNotifier(), resume: start)
        #expect(successor.poolBuffersInUse == 5)
        #expect(successor.lastSequence == 2)
        let payload = pattern(700, seed: 3)
        let outcome = try payload.withUnsafeBytes {
            try successor.trySend(type: .control, priority: .normal, payload: $0)
        }
        #expect(outcome == .sent, "the abandoned loan's buffers are free again")
        let rest = try channel.drain()
        #expect(rest.map(\.sequence) == [2, 3])
        #expect(rest.map(\.bytes) == [pattern(300, seed: 2), payload])
        try successor.reclaimBuffers()
        #expect(successor.poolBuffersInUse == 0)
    }

    @Test func aSuccessorResumesAtTheDeliveredIndexAndReleasesTheSpaceBehindIt() throws {
        let channel = try TestChannel(.small)
        for i in 0..<5 { #expect(try channel.send(count: 40, seed: UInt64(i)) == .sent) }
        for _ in 0..<3 { #expect(try channel.receive() != nil) }
        // Delivered after every message; released only in batches.
        let delivered = channel.load64(channel.lanes.pool.returnIntent + 8)
        #expect(delivered == 3 * 72)
        #expect(channel.consumerIndex(.normal) == 0)
        let start = try ResumePoint.receiver(base: channel.base, layout: channel.layout, direction: channel.direction)
        #expect(start.normal == delivered)
        #expect(channel.consumerIndex(.normal) == delivered, "the takeover released the delivered space")
        let successor = MessageReceiver(base: channel.base, layout: channel.layout, direction: channel.direction,
                                        notifier: NoNotifier(), resume: start)
        #expect(try successor.tryReceive { $0.sequence } == 4)
        // A delivered word outside consumer...producer (scribbled, or never kept) is ignored.
        channel.store64(1 << 50, channel.lanes.pool.returnIntent + 8)
        #expect(try ResumePoint.receiver(base: channel.base, layout: channel.layout,
                                         direction: channel.direction).normal == delivered)
    }

    @Test func aNewSenderContinuesTheSleepCountersItsPredecessorLeft() throws {
        let channel = try TestChannel(.small)
        // As if the predecessor had slept 5 times waiting for buffers and 9 times for room.
        channel.store32(5 << 1, channel.lanes.pool.returns.needWakeup)
        channel.store32(9 << 1 | 1, channel.ring(.express).needSpace)
        let start = try ResumePoint.sender(base: channel.base, layout: channel.layout, direction: channel.direction)
        #expect(start.returnEpisode == 5)
        #expect(start.expressEpisode == 9)
    }

    @Test func aScribbledIndexFailsTheResumeInsteadOfBeingFollowed() throws {
        let channel = try TestChannel(.small)
        channel.store64(1 << 40, channel.ring(.normal).producer)
        #expect(throws: ChannelError.self) {
            _ = try ResumePoint.receiver(base: channel.base, layout: channel.layout, direction: channel.direction)
        }
        #expect(throws: ChannelError.self) {
            _ = try ResumePoint.sender(base: channel.base, layout: channel.layout, direction: channel.direction)
        }
    }
}
