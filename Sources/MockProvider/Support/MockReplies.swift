import LLMQCore

/// The replies and token counts of the fake provider: deterministic functions of the
/// request, public so a test can compute what a given request must get back.
///
/// - Reply: `tokens` words drawn from a fixed list of 64 lowercase words by a
///   generator seeded from the messages (each message's role and text), the request's
///   `seed` and the choice index; words are joined by single spaces. A shorter reply
///   is a prefix of a longer one, so a reply cut by `max_tokens` is the first words of
///   the full one.
/// - Completion tokens: one per reply word.
/// - Prompt tokens: for each message, 4 + ceil(UTF-8 bytes of its text / 4), where a
///   message's text is its `content` string, or the `text` of its text parts joined
///   with nothing, or empty.
public enum MockReplies {
    /// Reply length, in words (= completion tokens), when not configured.
    public static let defaultTokens = 16

    /// A message as the fake provider sees it: its role and its text.
    public struct Message: Sendable, Hashable {
        public var role: String
        public var content: String

        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// The words replies are made of. Changing this list changes every reply.
    static let words: [String] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
        "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
        "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
        "yankee", "zulu", "amber", "basil", "cedar", "dune", "ember", "fern",
        "granite", "harbor", "iris", "jasper", "kelp", "lotus", "maple", "nectar",
        "onyx", "pebble", "quartz", "river", "sage", "thistle", "umber", "violet",
        "willow", "yarrow", "zephyr", "acorn", "birch", "cobalt", "dahlia", "elm",
        "flint", "garnet", "hazel", "ivy", "juniper", "lark", "moss", "opal",
    ]

    /// The reply text for a conversation.
    ///
    /// - Parameters:
    ///   - messages: the request's messages, in order.
    ///   - seed: the request's `seed`, if it has one.
    ///   - tokens: the reply length in words: the server's configured length, or
    ///     less when the request's `max_completion_tokens`/`max_tokens` cuts it.
    ///   - choice: the choice index, for requests with `n` > 1.
    public static func text(for messages: [Message], seed: Int64? = nil, tokens: Int = defaultTokens, choice: Int = 0)
        -> String
    {
        var digest = PromptDigest()
        for message in messages { digest.add(role: message.role, text: message.content) }
        return text(digest: digest.hash, seed: seed, tokens: tokens, choice: choice)
    }

    /// The reply text for a request's `messages` array as JSON, or nil when it is not
    /// an array of message objects.
    public static func text(
        forMessages messages: JSONValue, seed: Int64? = nil, tokens: Int = defaultTokens, choice: Int = 0
    )
        -> String?
    {
        guard let parsed = self.messages(from: messages) else { return nil }
        return text(for: parsed, seed: seed, tokens: tokens, choice: choice)
    }

    /// The messages of a `messages` JSON array, or nil when it is not an array of
    /// objects with a string `role`.
    public static func messages(from json: JSONValue) -> [Message]? {
        guard let array = json.arrayValue else { return nil }
        var result: [Message] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let object = element.objectValue, let role = object["role"]?.stringValue else { return nil }
            result.append(Message(role: role, content: messageText(object["content"])))
        }
        return result
    }

    /// The prompt token count the fake provider reports for a conversation.
    public static func promptTokens(for messages: [Message]) -> Int {
        var digest = PromptDigest()
        for message in messages { digest.add(role: message.role, text: message.content) }
        return digest.tokens
    }

    /// Token count of one message's text: ceil(UTF-8 bytes / 4), plus 4 for the message.
    static func messageTokens(textBytes: Int) -> Int {
        4 + (textBytes + 3) / 4
    }

    /// The text of a message's `content`: a string, the text parts of an array, or "".
    static func messageText(_ content: JSONValue?) -> String {
        switch content {
        case .string(let text)?:
            return text
        case .array(let parts)?:
            var text = ""
            for part in parts {
                if let piece = part.objectValue?["text"]?.stringValue { text += piece }
            }
            return text
        default:
            return ""
        }
    }

    /// The reply for a digest of the messages; the server's own path.
    static func text(digest: UInt64, seed: Int64?, tokens: Int, choice: Int) -> String {
        var generator = generator(digest: digest, seed: seed, choice: choice)
        var text = ""
        text.reserveCapacity(tokens * 7)
        for index in 0..<max(0, tokens) {
            if index > 0 { text += " " }
            text += words[Int(generator.next() & 63)]
        }
        return text
    }

    /// Writes the reply text straight into a buffer, as `text(digest:…)` spells it.
    static func write(digest: UInt64, seed: Int64?, tokens: Int, choice: Int, to buffer: inout ByteWriter) {
        var generator = generator(digest: digest, seed: seed, choice: choice)
        for index in 0..<max(0, tokens) {
            if index > 0 { buffer.writeStaticString(" ") }
            buffer.writeString(words[Int(generator.next() & 63)])
        }
    }

    /// The words of a reply, one per completion token; a stream sends one per chunk.
    static func words(digest: UInt64, seed: Int64?, tokens: Int, choice: Int) -> [String] {
        var generator = generator(digest: digest, seed: seed, choice: choice)
        return (0..<max(0, tokens)).map { _ in words[Int(generator.next() & 63)] }
    }

    /// The generator behind a reply's words (and a structured reply's values).
    static func generator(digest: UInt64, seed: Int64?, choice: Int) -> SplitMix64 {
        var hash = FNV1a()
        hash.combine(digest)
        if let seed {
            hash.combine(1 as UInt8)
            hash.combine(UInt64(bitPattern: seed))
        } else {
            hash.combine(0 as UInt8)
        }
        hash.combine(UInt64(choice))
        return SplitMix64(seed: hash.value)
    }
}

/// A running digest of a conversation: its hash (for replies and the prompt cache),
/// the hash before the last message, and token counts.
struct PromptDigest {
    private var hasher = FNV1a()
    private(set) var hash: UInt64 = FNV1a().value
    /// The hash of every message but the last: the prefix the prompt cache keys on.
    private(set) var prefixHash: UInt64 = FNV1a().value
    private(set) var tokens = 0
    private(set) var prefixTokens = 0

    mutating func add(role: String, text: String) {
        prefixHash = hash
        prefixTokens = tokens
        hasher.combine(role)
        hasher.combine(0 as UInt8)
        hasher.combine(text)
        hasher.combine(1 as UInt8)
        hash = hasher.value
        tokens += MockReplies.messageTokens(textBytes: text.utf8.count)
    }
}
