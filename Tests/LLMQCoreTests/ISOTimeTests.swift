import Foundation
import LLMQCore
import Testing

@Suite struct ISOTimeTests {
    @Test(arguments: [Int64(0), 1_795_617_340_123, 951_782_400_000, 4_102_444_799_999, -1])
    func formatsLikeFoundation(milliseconds: Int64) {
        let date = Date(timeIntervalSince1970: (Double(milliseconds) / 1000).rounded(.down))
        #expect(ISOTime.string(milliseconds: milliseconds) == ISO8601DateFormatter().string(from: date))
    }

    @Test func parsesRFC3339WithFractionsAndOffsets() {
        #expect(ISOTime.milliseconds("2026-11-25T14:35:40Z") == 1_795_617_340_000)
        #expect(ISOTime.milliseconds("2026-11-25T14:35:40.25Z") == 1_795_617_340_250)
        #expect(ISOTime.milliseconds("2026-11-25T15:35:40+01:00") == 1_795_617_340_000)
        #expect(ISOTime.milliseconds("2026-11-25T09:35:40-05:00") == 1_795_617_340_000)
        for bad in ["", "2026-11-25", "2026-13-25T00:00:00Z", "2026-11-25T14:35:40", "2026-11-25T14:35:40Zx", "soon"] {
            #expect(ISOTime.milliseconds(bad) == nil, "\(bad)")
        }
    }
}
