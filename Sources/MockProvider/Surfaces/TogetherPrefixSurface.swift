import NIOHTTP1

/// Together's chat completions under the mock's own `/together/v1` prefix, where every
/// request is Together's whatever its model is called.
///
/// Under `/v1` Together shares OpenAI's paths and is told apart by model name (see
/// `TogetherSurface`); a list of batches cannot be told apart that way, so the mock
/// also serves all of Together under `/together/v1` (`TogetherBatchSurface` has the
/// files and batches there). Point `TOGETHER_BASE_URL` at `http://HOST:PORT/together/v1`.
struct TogetherPrefixSurface: MockSurfaceBesideOnline {
    static let prefix = "/together/v1"
    static let chatCompletions = 0

    let endpointNames = ["POST /together/v1/chat/completions"]
    let online: TogetherSurface

    func match(method: HTTPMethod, path: Substring) -> Int? {
        method == .POST && path == "/together/v1/chat/completions" ? Self.chatCompletions : nil
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        online.prepare(request, endpoint: endpoint, context: &context)
    }
}
