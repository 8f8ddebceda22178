import CArchangel

/// One sensor's settings (`struct archangel_sensors_config`, docs/sensors.md "Control").
public struct SensorConfiguration: Sendable, Equatable {
    /// What the module does with a case it has no cached verdict for (exec and net only).
    public enum Policy: UInt8, Sendable, CaseIterable {
        /// Records only, no request.
        case observe = 0
        /// Let it run or pass, ask, enforce when answered (the exposure window is counted).
        case allowAndAsk = 1
        /// Deny it now, ask, cache the answer for the next one.
        case denyAndAsk = 2
        /// Exec: SIGSTOP until the verdict or the deadline; net: as deny-and-ask.
        case hold = 3

        /// `observe`, `allow-ask`, `deny-ask`, `hold`.
        public var name: String { ["observe", "allow-ask", "deny-ask", "hold"][Int(rawValue)] }
        /// The policy called `name` (also `allow-and-ask`, `deny-and-ask`), or nil.
        public init?(name: String) {
            switch name {
            case "observe": self = .observe
            case "allow-ask", "allow-and-ask": self = .allowAndAsk
            case "deny-ask", "deny-and-ask": self = .denyAndAsk
            case "hold": self = .hold
            default: return nil
            }
        }
    }

    /// `ARCHANGEL_SENSORS_F_*` other than ENABLED.
    public struct Flags: OptionSet, Sendable, Equatable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// syscall: sys_exit records too.
        public static let syscallExit = Flags(rawValue: UInt32(ARCHANGEL_SENSORS_F_SYSCALL_EXIT))
        /// net: every packet, not only each flow's first.
        public static let everyPacket = Flags(rawValue: UInt32(ARCHANGEL_SENSORS_F_NET_ALL))
        /// exec: no EXIT records.
        public static let noExitRecords = Flags(rawValue: UInt32(ARCHANGEL_SENSORS_F_EXEC_NO_EXIT))
        /// mem: no page-fault summaries.
        public static let noFaultSummaries = Flags(rawValue: UInt32(ARCHANGEL_SENSORS_F_MEM_NO_FAULTS))
        /// mem: no W^X records.
        public static let noWritableExecutable = Flags(rawValue: UInt32(ARCHANGEL_SENSORS_F_MEM_NO_WX))
    }

    /// The sensor runs.
    public var enabled: Bool
    /// For unknown cases (only `observe` is valid for syscall and mem).
    public var policy: Policy
    /// Applied on a deadline, at detach, and when a request cannot be tracked or sent:
    /// allow is fail-open, deny or kill fail-closed.
    public var defaultVerdict: Verdict
    /// A request's deadline, milliseconds; 0 is the module's default (1000), at most 60,000.
    public var deadlineMilliseconds: UInt32
    /// mem: the fault summary period, milliseconds; 0 is 1000, else 10...60,000.
    public var intervalMilliseconds: UInt32
    /// The sensor's options.
    public var flags: Flags
    /// syscall: the system call numbers traced (x86-64, 0..<512).
    public var syscalls: [Int]

    /// Creates a configuration; the defaults switch the sensor on in observe mode.
    public init(enabled: Bool = true, policy: Policy = .observe, defaultVerdict: Verdict = .allow,
                deadlineMilliseconds: UInt32 = 0, intervalMilliseconds: UInt32 = 0, flags: Flags = [],
                syscalls: [Int] = []) {
        self.enabled = enabled
        self.policy = policy
        self.defaultVerdict = defaultVerdict
        self.deadlineMilliseconds = deadlineMilliseconds
        self.intervalMilliseconds = intervalMilliseconds
        self.flags = flags
        self.syscalls = syscalls
    }
}
