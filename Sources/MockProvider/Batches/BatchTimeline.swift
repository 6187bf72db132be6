/// Where a batch is at a given time: a pure function of its creation time, its
/// duration and what was done to it (cancelled, settled), so a client that stops and
/// polls again later finds the batch where time has taken it.
///
/// The first 5 % of the duration is validation; requests then complete evenly, in the
/// batch's own order, until 95 %; the rest is finalizing. A batch that expires stops
/// at half its requests and ends expired at the end of its duration. A zero duration
/// ends a batch at once, so it is over at the first poll.
struct BatchTimeline: Sendable, Equatable {
    enum Phase: Equatable {
        case validating
        case inProgress
        case finalizing
        /// Cancel was asked for and the batch has not been seen since.
        case cancelling
        case ended(Ending)
    }

    enum Ending: Equatable {
        case completed
        case expired
        case cancelled
    }

    /// Unix seconds.
    var created: Double
    /// Seconds from creation to the end.
    var seconds: Double
    /// Whether the batch ends expired, with half its requests run.
    var expires: Bool
    /// When cancel was asked for.
    var cancelledAt: Double?
    /// When a cancelled batch was first seen after its cancel: it ends there.
    var cancelSettledAt: Double?

    /// When validation ends and requests start to run.
    var validatedAt: Double { created + 0.05 * seconds }
    /// When the last request has run (finalizing starts).
    var processedAt: Double { created + 0.95 * seconds }
    /// When the batch ends unless cancelled.
    var endsAt: Double { created + seconds }

    /// The most requests that ever run: all, or half for a batch that expires.
    func reachable(of total: Int) -> Int {
        expires ? total / 2 : total
    }

    /// How many of `total` requests have run at `time` (cancelling freezes the count).
    func done(of total: Int, at time: Double) -> Int {
        let time = min(time, cancelledAt ?? time)
        let count: Int
        if time >= processedAt {
            count = total
        } else if time <= validatedAt {
            count = 0
        } else {
            count = Int((Double(total) * (time - validatedAt) / (processedAt - validatedAt)).rounded(.down))
        }
        return min(count, reachable(of: total))
    }

    func phase(at time: Double) -> Phase {
        if cancelledAt != nil {
            if let settled = cancelSettledAt, time >= settled { return .ended(.cancelled) }
            return .cancelling
        }
        if time >= endsAt { return .ended(expires ? .expired : .completed) }
        if time < validatedAt { return .validating }
        if time < processedAt || expires { return .inProgress }
        return .finalizing
    }

    /// When the batch ended, if it has by `time`.
    func endedAt(at time: Double) -> Double? {
        switch phase(at: time) {
        case .ended(.cancelled): return cancelSettledAt
        case .ended: return endsAt
        default: return nil
        }
    }

    /// Whether the batch has ended by `time`.
    func hasEnded(at time: Double) -> Bool {
        if case .ended = phase(at: time) { return true }
        return false
    }
}
