#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the simulator's wall-clock timestamps come from (`created_at`, `created`, the `Date` header, …).
///
/// `.fixed` makes every timestamp the same, so whole responses can be compared byte for byte.
public enum SimulatorClock: Sendable, Equatable {
    /// The real wall clock, as Ollama.
    case system
    /// Always this instant (seconds and nanoseconds since 1970-01-01T00:00:00Z).
    case fixed(secondsSince1970: Int64, nanoseconds: Int32 = 0)

    /// 2025-06-01T12:00:00Z, the instant used by the wire-format fixtures.
    public static let fixtureInstant = SimulatorClock.fixed(secondsSince1970: 1_748_779_200)

    func now() -> SimulatedInstant {
        switch self {
        case .system:
            var spec = timespec()
            clock_gettime(CLOCK_REALTIME, &spec)
            return SimulatedInstant(seconds: Int64(spec.tv_sec), nanoseconds: Int32(spec.tv_nsec))
        case .fixed(let seconds, let nanoseconds):
            return SimulatedInstant(seconds: seconds, nanoseconds: nanoseconds)
        }
    }
}

/// A wall-clock instant with the formats Go writes it in.
struct SimulatedInstant: Sendable, Equatable {
    var seconds: Int64
    var nanoseconds: Int32

    func adding(seconds extra: Int64) -> SimulatedInstant {
        SimulatedInstant(seconds: seconds + extra, nanoseconds: nanoseconds)
    }

    /// Go's `time.Time` JSON form in UTC (RFC 3339 with nanoseconds, trailing zeros trimmed), e.g.
    /// `2025-06-01T12:00:00.02Z`.
    var rfc3339Nano: String {
        let civil = CivilTime(secondsSince1970: seconds)
        var text =
            "\(pad(civil.year, 4))-\(pad(civil.month, 2))-\(pad(civil.day, 2))T"
            + "\(pad(civil.hour, 2)):\(pad(civil.minute, 2)):\(pad(civil.second, 2))"
        if nanoseconds > 0 {
            var fraction = pad(Int(nanoseconds), 9)
            while fraction.last == "0" { fraction.removeLast() }
            text += "." + fraction
        }
        return text + "Z"
    }

    /// The HTTP `Date` header form Go writes: `Sun, 01 Jun 2025 12:00:00 GMT`.
    var httpDate: String {
        let civil = CivilTime(secondsSince1970: seconds)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return "\(days[civil.weekday]), \(pad(civil.day, 2)) \(months[civil.month - 1]) \(pad(civil.year, 4)) "
            + "\(pad(civil.hour, 2)):\(pad(civil.minute, 2)):\(pad(civil.second, 2)) GMT"
    }

    private func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

/// Calendar fields of a UTC instant (proleptic Gregorian; Howard Hinnant's days-to-civil algorithm).
private struct CivilTime {
    let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, weekday: Int

    init(secondsSince1970: Int64) {
        let seconds = Int(secondsSince1970)
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        hour = secondOfDay / 3600
        minute = secondOfDay % 3600 / 60
        second = secondOfDay % 60
        weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }
}
