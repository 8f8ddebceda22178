import ArchangelCore
import CArchangel
import Testing

/// The wake-up policy of docs/efficiency.md: its two pure state machines
/// with made-up times, and the sender's signalling rules on real channel memory.
@Suite struct WakePolicyTests {
    static let ms: UInt64 = 1_000_000
    static let us: UInt64 = 1_000

    // MARK: The producer's coalescer

    @Test func theFirstSleepIsSignalledAtOnceAndTheNextWithinAWindowAtItsTrailingEdge() {
        var c = WakeCoalescer(window: Self.ms)
        #expect(c.decide(now: 10 * Self.ms, noWakeup: false, laneFull: false) == .signalNow)
        // 200 µs later the receiver sleeps again: held until 8/10 of a window after.
        #expect(c.decide(now: 10 * Self.ms + 200 * Self.us, noWakeup: false, laneFull: false)
                == .signalAt(10 * Self.ms + 800 * Self.us))
        // Publications until then ride on the pending trailing edge.
        #expect(c.decide(now: 10 * Self.ms + 700 * Self.us, noWakeup: false, laneFull: false) == .merged)
        // After it fired, the next one is held until 9/10 of a window after it, less the tolerance (tat was already past the deadline).
        #expect(c.decide(now: 10 * Self.ms + 900 * Self.us, noWakeup: false, laneFull: false)
                == .signalAt(11 * Self.ms + 700 * Self.us))
        // A sleep long after takes the leading edge again.
        #expect(c.decide(now: 20 * Self.ms, noWakeup: false, laneFull: false) == .signalNow)
    }

    @Test func aSourceOneWindowApartWithJitterAlwaysTakesTheLeadingEdge() {
        var c = WakeCoalescer(window: Self.ms)
        var now = 5 * Self.ms
        for i in 0..<1_000 {
            // One window apart, up to 10% early or late.
            let jitter = Int64(i % 5) * 50_000 - 100_000 as Int64
            #expect(c.decide(now: UInt64(Int64(now) + jitter), noWakeup: false, laneFull: false) == .signalNow)
            now += Self.ms
        }
    }

    @Test func aFastSourceIsHeldToOneSignalPerWindow() {
        var c = WakeCoalescer(window: Self.ms)
        var signals: [UInt64] = []
        var pending: UInt64 = 0
        for t in stride(from: UInt64(0), to: 100 * Self.ms, by: Int(50 * Self.us)) {   // 20 per window
            if pending != 0 && Self.ms + t >= pending { signals.append(pending); pending = 0 }
            switch c.decide(now: Self.ms + t, noWakeup: false, laneFull: false) {
            case .signalNow: signals.append(Self.ms + t)
            case .signalAt(let d): pending = d
            case .merged: break
            }
        }
        #expect(signals.count <= 113, "about one per window, at most 10/9: \(signals.count)")
        for (a, b) in zip(signals, signals.dropFirst()) { #expect(b - a >= 800 * Self.us) }
    }

    @Test func aFullLaneIsSignalledAtOnceEvenWithinAWindow() {
        var c = WakeCoalescer(window: Self.ms)
        #expect(c.decide(now: Self.ms, noWakeup: false, laneFull: false) == .signalNow)
        #expect(c.decide(now: Self.ms + 10 * Self.us, noWakeup: false, laneFull: true) == .signalNow)
    }

    @Test func noWakeupNeverTakesTheLeadingEdgeButStillGetsATrailingOne() {
        var c = WakeCoalescer(window: Self.ms)
        #expect(c.decide(now: 5 * Self.ms, noWakeup: true, laneFull: false) == .signalAt(6 * Self.ms))
        #expect(c.decide(now: 5 * Self.ms + 1, noWakeup: true, laneFull: false) == .merged)
    }

    @Test func signalsOutsideTheBudgetNeverPushATrailingEdgePastOneWindow() {
        // The model check's counterexample (verification/README.md): a leading edge, then urgent
        // signals a few microseconds apart, then a normal message: its trailing edge must still
        // come within one window, not one window per urgent signal.
        var c = WakeCoalescer(window: Self.ms)
        let start = 10 * Self.ms
        #expect(c.decide(now: start, noWakeup: false, laneFull: false) == .signalNow)
        for i in 1...5 { c.signalled(at: start + UInt64(i) * 10 * Self.us) }
        let now = start + 100 * Self.us
        guard case let .signalAt(deadline) = c.decide(now: now, noWakeup: false, laneFull: false) else {
            Issue.record("a normal message right after is coalesced to a trailing edge")
            return
        }
        #expect(deadline <= now + Self.ms, "trailing edge \(deadline - now) ns away")
        #expect(c.tat <= now + 2 * Self.ms)
    }

    @Test func aZeroWindowSignalsEverySleep() {
        var c = WakeCoalescer(window: 0)
        for t in 1...5 { #expect(c.decide(now: UInt64(t), noWakeup: false, laneFull: false) == .signalNow) }
    }

    // MARK: The consumer's phases

    @Test func aQuietStreamStaysBlocking() {
        var w = AdaptiveReceiveWait(window: Self.ms, spinBudget: 10 * Self.us)
        var received: UInt64 = 0
        for i in 1...20 {
            received += 1                       // one message per 5 ms
            #expect(w.onEmpty(now: UInt64(i) * 5 * Self.ms, received: received, sent: 0) == .block)
        }
        #expect(w.phase == .blocking)
    }

    @Test func twoMessagesPerWindowSwitchToTimedPollingAndAnEmptyPollBackToBlocking() {
        var w = AdaptiveReceiveWait(window: Self.ms, spinBudget: 10 * Self.us)
        #expect(w.onEmpty(now: 1 * Self.ms, received: 0, sent: 0) == .block)
        // Woken 400 µs later with 2 messages: a gap of 200 µs, at most half a window.
        #expect(w.onEmpty(now: 1 * Self.ms + 400 * Self.us, received: 2, sent: 0) == .poll(for: Self.ms))
        #expect(w.phase == .polling)
        // A window later 10 more: keep polling.
        #expect(w.onEmpty(now: 2 * Self.ms + 400 * Self.us, received: 12, sent: 0) == .poll(for: Self.ms))
        // A window with nothing: back to blocking, with no timer.
        #expect(w.onEmpty(now: 3 * Self.ms + 400 * Self.us, received: 12, sent: 0) == .block)
        #expect(w.phase == .blocking)
        // And it stays blocking until messages come fast again.
        #expect(w.onEmpty(now: 9 * Self.ms, received: 13, sent: 0) == .block)
    }

    @Test func aStreamNeverSpinsButAReplyExpectedWithinTheBudgetDoes() {
        var w = AdaptiveReceiveWait(window: Self.ms, spinBudget: 10 * Self.us)
        _ = w.onEmpty(now: Self.ms, received: 0, sent: 0)
        // A message 2 µs later, nothing sent by us: a stream, so no spin (timed polling).
        #expect(w.onEmpty(now: Self.ms + 2 * Self.us, received: 1, sent: 0) == .poll(for: Self.ms))

        var rpc = AdaptiveReceiveWait(window: Self.ms, spinBudget: 10 * Self.us)
        _ = rpc.onEmpty(now: Self.ms, received: 0, sent: 1)          // request 1 out
        // Its reply came 3 µs later and we sent the next request: spin for the reply.
        let now = Self.ms + 3 * Self.us
        #expect(rpc.onEmpty(now: now, received: 1, sent: 2) == .spin(until: now + 10 * Self.us))
        // The spin found nothing: sleep, but do not spin again before a message arrives.
        #expect(rpc.afterSpin() == .poll(for: Self.ms))
    }

    // MARK: The sender's rules on channel memory

    @Test func anAdaptiveSenderWakesABlockingReceiverOnceAndDefersTheNextSleepToTheTrailingEdge() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, senderNotifier: notifier,
                                      waitPolicy: WaitPolicy(maxDeliveryDelay: .seconds(1)))
        let counters = channel.sender.counters
        #expect(try channel.receiver.prepareToSleep())
        try channel.send(count: 8, seed: 1)
        #expect(notifier.count == 1 && notifier.scheduled == 0)
        channel.receiver.finishSleep()
        _ = try channel.drain()
        // The receiver sleeps again well within the second-long window.
        #expect(try channel.receiver.prepareToSleep())
        try channel.send(count: 8, seed: 2)
        try channel.send(count: 8, seed: 3)
        #expect(notifier.count == 1, "no second leading edge within a window")
        #expect(notifier.scheduled == 1, "one trailing edge")
        // The second publication found the sleep already covered by the trailing edge.
        #expect(counters.load(.notificationsCoalesced) == 1)
        #expect(counters.load(.notificationsSuppressed) == 1)
        #expect(counters.load(.notificationsSent) == 2)
        let before = archangel_monotonic_ns()
        #expect(notifier.deadline > before && notifier.deadline <= before + 1_000_000_000)
    }

    @Test func aLanePastTheWakeBatchBringsAPendingTrailingEdgeForward() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, senderNotifier: notifier,
                                      waitPolicy: WaitPolicy(maxDeliveryDelay: .seconds(1), wakeBatch: 256))
        #expect(try channel.receiver.prepareToSleep())
        try channel.send(count: 8, seed: 1)
        #expect(notifier.count == 1)
        channel.receiver.finishSleep()
        _ = try channel.drain()
        #expect(try channel.receiver.prepareToSleep())
        try channel.send(count: 8, seed: 2)
        #expect(notifier.count == 1 && notifier.scheduled == 1, "deferred to the trailing edge")
        // 8 more records of 40 bytes: past 256 unread bytes.
        for seed in 3..<11 { try channel.send(count: 8, seed: UInt64(seed)) }
        #expect(notifier.count == 2, "the full lane signalled at once")
    }

    @Test func aPollingReceiverIsWokenOnlyByUrgentOrCriticalMessages() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, senderNotifier: notifier, waitPolicy: .balanced)
        let counters = channel.sender.counters
        #expect(try channel.receiver.prepareToPoll())
        #expect(channel.load32(channel.ring(.express).needWakeup) & 1 == 1)
        #expect(channel.load32(channel.ring(.normal).needWakeup) & 1 == 0)
        try channel.send(count: 8, seed: 1)
        try channel.send(count: 8, seed: 2, priority: .high)
        #expect(notifier.count == 0 && notifier.scheduled == 0)
        #expect(counters.load(.notificationsSuppressed) == 2)
        try channel.send(count: 8, seed: 3, options: .urgent)
        #expect(notifier.count == 1)
        // Once per announced poll: a critical message in the same poll is covered.
        try channel.send(count: 8, seed: 4, priority: .critical)
        #expect(notifier.count == 1)
        channel.receiver.finishPoll()
        _ = try channel.drain()
        #expect(try channel.receiver.prepareToPoll())
        try channel.send(count: 8, seed: 5, priority: .critical)
        #expect(notifier.count == 2)
        #expect(channel.receiver.counters.load(.timedWaits) == 2)
    }

    @Test func aPacedPollIsSignalledAtItsLeadingEdgeOnlyAtMostOncePerSpacing() throws {
        let notifier = CountingNotifier()
        // A one-second window: the second sleep below comes long before the spacing allows a signal.
        let channel = try TestChannel(.small, senderNotifier: notifier,
                                      waitPolicy: WaitPolicy(maxDeliveryDelay: .seconds(1), pacedPolls: true))
        let counters = channel.sender.counters
        #expect(try channel.receiver.prepareToPacedPoll())
        #expect(channel.load32(channel.ring(.normal).needWakeup) & 1 == 1)
        #expect(channel.load32(channel.ring(.express).needWakeup) & 1 == 0)
        try channel.send(count: 8, seed: 1)
        #expect(notifier.count == 1 && notifier.scheduled == 0, "the leading edge, no timer")
        // The same poll is covered: no second signal.
        try channel.send(count: 8, seed: 2)
        #expect(notifier.count == 1)
        channel.receiver.finishSleep()
        _ = try channel.drain()
        // A new paced poll within the spacing: suppressed, and no trailing edge
        // (the receiver's own timeout, one window, bounds the delay).
        #expect(try channel.receiver.prepareToPacedPoll())
        try channel.send(count: 8, seed: 3)
        #expect(notifier.count == 1 && notifier.scheduled == 0)
        #expect(counters.load(.notificationsSuppressed) >= 2)
        // An urgent message still wakes it at once.
        try channel.send(count: 8, seed: 4, options: .urgent)
        #expect(notifier.count == 2)
        #expect(channel.receiver.counters.load(.timedWaits) == 2)
        #expect(channel.receiver.counters.load(.waits) == 0)
    }

    @Test func thePacedSpacingIsNineteenTwentiethsOfAWindow() {
        var coalescer = WakeCoalescer(window: 1_000_000)
        var decisions: [Bool] = []
        for (now, full) in [(5_000_000, false), (5_949_999, false), (5_949_999, true),
                            (5_949_999 + 949_999, false), (5_949_999 + 950_000, false)] as [(UInt64, Bool)] {
            decisions.append(coalescer.pacedLeadingEdge(now: now, laneFull: full))
        }
        // Signal, too early, a full lane signals at once, too early after that, due.
        #expect(decisions == [true, false, true, false, true])
    }

    @Test func aLowLatencySenderSignalsEveryArmedWordAtOnce() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, senderNotifier: notifier, waitPolicy: .lowLatency)
        #expect(try channel.receiver.prepareToPoll())
        try channel.send(count: 8, seed: 1)
        #expect(notifier.count == 1 && notifier.scheduled == 0)
    }

    @Test func thePresetsHaveTheirDocumentedKnobsAndNames() throws {
        #expect(WaitPolicy.default == .balanced)
        #expect(WaitPolicy.balanced.maxDeliveryDelay == .milliseconds(1) && WaitPolicy.balanced.adaptive)
        #expect(WaitPolicy.responsive.maxDeliveryDelay == .microseconds(100))
        #expect(WaitPolicy.efficient.maxDeliveryDelay == .milliseconds(10))
        #expect(!WaitPolicy.lowLatency.adaptive && WaitPolicy.lowLatency.spin == .microseconds(20))
        for name in WaitPolicy.presetNames {
            let policy = try #require(WaitPolicy.named(name))
            #expect(policy.description == name)
            try policy.validate()
        }
        #expect(WaitPolicy.named("fast") == nil)
        #expect(WaitPolicy.balanced.pacedPolls && !WaitPolicy.responsive.pacedPolls && !WaitPolicy.efficient.pacedPolls)
        #expect(WaitPolicy.named("balanced-timed")?.pacedPolls == false)
        #expect(WaitPolicy.named("efficient-paced")?.pacedPolls == true)
        #expect(WaitPolicy.named("lowLatency-paced") == nil, "spin-then-sleep does not poll")
        #expect(throws: ChannelError.self) { try WaitPolicy(maxDeliveryDelay: .nanoseconds(10)).validate() }
    }
}
