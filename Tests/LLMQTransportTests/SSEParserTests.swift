import LLMQTransport
import Testing

@Suite struct SSEParserTests {
    private func parse(_ text: String) -> [SSEEvent] {
        var parser = SSEParser()
        return parser.parse(Array(text.utf8))
    }

    @Test func dataLinesAreJoinedAndDispatchedOnABlankLine() {
        #expect(parse("data: one\ndata: two\n\n") == [SSEEvent(data: "one\ntwo")])
        #expect(parse("data: unfinished\n").isEmpty)
    }

    @Test(arguments: ["\n", "\r\n", "\r"])
    func everyLineEndingWorks(newline: String) {
        let text = ["event: delta", "data: a", "data: b", "", "data: c", "", ""].joined(separator: newline)
        #expect(parse(text) == [SSEEvent(type: "delta", data: "a\nb"), SSEEvent(data: "c")])
    }

    @Test func fieldsAndComments() {
        let text = """
            : a comment, ignored
            event: content_block_delta
            id: 42
            data:no space after the colon
            data:  two spaces keep one
            unknown: ignored

            data

            event: ping

            data: after a data-less event

            """
        #expect(
            parse(text + "\n") == [
                SSEEvent(type: "content_block_delta", data: "no space after the colon\n two spaces keep one", id: "42"),
                SSEEvent(data: "", id: "42"),
                SSEEvent(data: "after a data-less event", id: "42"),
            ])
    }

    @Test func idPersistsUntilReset() {
        let events = parse("id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\u{0}y\ndata: d\n\n")
        #expect(events.map(\.id) == ["1", "1", nil, nil])
    }

    @Test func retryIsExposedWhenValid() {
        var parser = SSEParser()
        _ = parser.parse(Array("retry: 3000\n\nretry: soon\n\nretry: 12a\n\n".utf8))
        #expect(parser.retry == 3000)
    }

    @Test func byteOrderMarkIsSkippedOnlyAtTheStart() {
        let events = parse("\u{FEFF}data: a\n\n\u{FEFF}data: b\n\n")
        #expect(events == [SSEEvent(data: "a")])
    }

    @Test func unicodeData() {
        #expect(parse("data: héllo 👋\n\n") == [SSEEvent(data: "héllo 👋")])
    }

    static let sample = Array(
        (": hi\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\nid: 9\rdata: x\r\rdata: y\n"
            + "data: z\n\nretry: 100\ndata: [DONE]\r\n\r\n").utf8)

    static let sampleEvents = [
        SSEEvent(type: "message_start", data: #"{"a":1}"#),
        SSEEvent(data: "x", id: "9"),
        SSEEvent(data: "y\nz", id: "9"),
        SSEEvent(data: "[DONE]", id: "9"),
    ]

    @Test func splitAtEveryBytePosition() {
        for split in 0...Self.sample.count {
            var parser = SSEParser()
            let events = parser.parse(Self.sample[..<split]) + parser.parse(Self.sample[split...])
            #expect(events == Self.sampleEvents, "split at byte \(split)")
            #expect(parser.retry == 100)
        }
    }

    @Test func splitAtEveryPairOfPositions() {
        for first in 0...Self.sample.count {
            for second in first...Self.sample.count {
                var parser = SSEParser()
                let events =
                    parser.parse(Self.sample[..<first]) + parser.parse(Self.sample[first..<second])
                    + parser.parse(Self.sample[second...])
                if events != Self.sampleEvents {
                    Issue.record("split at bytes \(first) and \(second): \(events)")
                    return
                }
            }
        }
    }

    @Test func oneByteAtATime() {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in Self.sample { events += parser.parse([byte]) }
        #expect(events == Self.sampleEvents)
    }

    @Test func eventsFromAnHTTPBody() async throws {
        let body = HTTPBody(chunks: [Array("data: 1\n\nda".utf8), Array("ta: 2\r".utf8), Array("\n\r\n".utf8)])
        var data: [String] = []
        for try await event in body.serverSentEvents { data.append(event.data) }
        #expect(data == ["1", "2"])
    }
}
