import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import Testing

/// What each adapter makes of a failure's rate-limit headers: how long to wait, and
/// whether waiting can help at all.
@Suite struct RateLimitHintTests {
    let openAI = OpenAIAdapter(baseURL: "http://x/v1")
    let together = OpenAIAdapter(provider: .together, baseURL: "http://x/v1")
    let anthropic = AnthropicAdapter(baseURL: "http://x")
    let gemini = GeminiAdapter(baseURL: "http://x")

    func failure(_ adapter: some ProviderAdapter, _ response: HTTPResponse) -> ProviderFailure? {
        guard case .failure(let failure) = adapter.parse(response) else { return nil }
        return failure
    }

    func response(_ status: Int, _ headers: HTTPHeaders, _ body: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers, body: Array(body.utf8))
    }

    static let openAIRateLimit =
        #"{"error":{"message":"Rate limit reached.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
    static let anthropicRateLimit = #"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited."}}"#

    // MARK: - Waits

    @Test func anOpenAI429WithOnlyAUsedUpBudgetWaitsForItsReset() {
        let limited = response(
            429,
            [
                "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms",
                "x-ratelimit-remaining-tokens": "900", "x-ratelimit-reset-tokens": "6s",
            ], Self.openAIRateLimit)
        #expect(failure(openAI, limited)?.retryAfterMilliseconds == 300)
        // retry-after-ms still wins.
        var told = limited
        told.headers.add(name: "retry-after-ms", value: "40")
        #expect(failure(openAI, told)?.retryAfterMilliseconds == 40)
        // A 429 with no budget at 0 (the request needs more than remains): the latest reset.
        let tooBig = response(
            429,
            [
                "x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "2.5s",
            ], Self.openAIRateLimit)
        #expect(failure(openAI, tooBig)?.retryAfterMilliseconds == 2_500)
    }

    @Test func aFailureOtherThanA429WaitsOnlyForAUsedUpBudget() {
        let body = #"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#
        let busy = response(503, ["x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s"], body)
        #expect(failure(openAI, busy)?.retryAfterMilliseconds == nil)
        let usedUp = response(503, ["x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"], body)
        #expect(failure(openAI, usedUp)?.retryAfterMilliseconds == 1_000)
    }

    @Test func togethersBudgetHeadersAreRead() {
        // A 200: the request budget and its reset in seconds; the token budget.
        let answer = HTTPResponse(
            status: 200,
            headers: [
                "x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2",
                "x-tokenlimit-limit": "1000", "x-tokenlimit-remaining": "400",
            ])
        let info = together.rateLimits(answer)
        #expect(info.remainingRequests == 0)
        #expect(info.resetRequestsMilliseconds == 2_000)
        #expect(info.remainingTokens == 400)
        #expect(info.resetTokensMilliseconds == nil)
        #expect(info.pauseMilliseconds == 2_000)
        // Budget left: no pause, whatever the reset.
        var left = answer
        left.headers.replaceOrAdd(name: "x-ratelimit-remaining", value: "3")
        #expect(together.rateLimits(left).pauseMilliseconds == nil)
        // Only a token budget: the reset is its.
        let tokensOnly = HTTPResponse(
            status: 200, headers: ["x-tokenlimit-remaining": "0", "x-ratelimit-reset": "1"])
        #expect(together.rateLimits(tokensOnly).resetTokensMilliseconds == 1_000)
        #expect(together.rateLimits(tokensOnly).pauseMilliseconds == 1_000)
    }

    @Test func aTogether429WaitsForItsResetEvenWithRequestsLeft() {
        // The fake provider's token-limited 429: requests left, too few tokens, the
        // reset is the wait until the request would pass.
        let limited = response(
            429,
            [
                "x-ratelimit-limit": "60", "x-ratelimit-remaining": "12", "x-tokenlimit-limit": "1000",
                "x-tokenlimit-remaining": "30", "x-ratelimit-reset": "3",
            ],
            #"{"id":"x","error":{"message":"You have exceeded your token rate limit.","#
                + #""type":"dynamic_token_limited","param":null,"code":null}}"#)
        let failure = failure(together, limited)
        #expect(failure?.retryAfterMilliseconds == 3_000)
        #expect(failure?.type == "dynamic_token_limited")
        #expect(failure?.permanent == false)
    }

    @Test func aResetGivenAsAUnixTimeIsTakenAsOne() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let info = RateLimitHeaders.openAI(["x-ratelimit-remaining": "0", "x-ratelimit-reset": "1800000004"], now: now)
        #expect(info.resetRequestsMilliseconds == 4_000)
    }

    @Test func anAnthropic429WithOnlyAUsedUpBudgetWaitsForItsReset() throws {
        let reset = ISOTime.string(milliseconds: Int64(Date().timeIntervalSince1970 * 1000) + 60_000)
        let limited = response(
            429, ["anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": reset],
            Self.anthropicRateLimit)
        let wait = try #require(failure(anthropic, limited)?.retryAfterMilliseconds)
        #expect(wait > 55_000)
        #expect(wait <= 60_000)
    }

    @Test func anthropicsInputAndOutputTokenBudgetsCount() {
        let later = "2030-01-01T00:00:10Z"
        let muchLater = "2030-01-01T00:01:00Z"
        let info = anthropic.rateLimits(
            HTTPResponse(
                status: 200,
                headers: [
                    "anthropic-ratelimit-tokens-remaining": "5000", "anthropic-ratelimit-tokens-reset": muchLater,
                    "anthropic-ratelimit-input-tokens-remaining": "0",
                    "anthropic-ratelimit-input-tokens-reset": later,
                    "anthropic-ratelimit-output-tokens-remaining": "800",
                    "anthropic-ratelimit-output-tokens-reset": muchLater,
                ]))
        #expect(info.remainingTokens == 0)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let untilLater = (ISOTime.milliseconds(later) ?? 0) - now
        // The used-up input budget's reset, not the later one of the budgets left.
        #expect(abs((info.resetTokensMilliseconds ?? 0) - untilLater) < 5_000)
        #expect(info.pauseMilliseconds == info.resetTokensMilliseconds)
    }

    @Test func aZeroRetryDelayFromGeminiIsNoHint() {
        let body = #"""
            {"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED",
             "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0s"}]}}
            """#
        let limited = response(429, [:], body)
        #expect(failure(gemini, limited)?.retryAfterMilliseconds == nil)
        #expect(gemini.rateLimits(limited).pauseMilliseconds == nil)
    }

    @Test(
        arguments: [
            ["retry-after": "0"], ["retry-after": "-3"], ["retry-after-ms": "0"], ["retry-after-ms": "-1"],
            ["retry-after": "Thu, 01 Jan 1970 00:00:01 GMT"], ["retry-after": "0", "retry-after-ms": "0"],
        ] as [HTTPHeaders])
    func aWaitOfZeroOrLessIsNoHint(_ headers: HTTPHeaders) {
        #expect(RateLimitHeaders.retryAfterMilliseconds(headers) == nil)
        #expect(failure(openAI, response(429, headers, Self.openAIRateLimit))?.retryAfterMilliseconds == nil)
        #expect(failure(anthropic, response(429, headers, Self.anthropicRateLimit))?.retryAfterMilliseconds == nil)
        #expect(openAI.rateLimits(HTTPResponse(status: 200, headers: headers)).pauseMilliseconds == nil)
    }

    @Test func aZeroRetryAfterMsFallsBackToRetryAfter() {
        #expect(RateLimitHeaders.retryAfterMilliseconds(["retry-after-ms": "0", "retry-after": "2"]) == 2_000)
    }

    // MARK: - 429s that waiting cannot cure

    @Test func anOpenAIAccountOutOfCreditIsPermanent() {
        let body =
            #"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","#
            + #""type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#
        let failure = failure(openAI, response(429, ["retry-after": "1"], body))
        #expect(failure?.permanent == true)
        #expect(failure?.type == "insufficient_quota")
        #expect(failure?.message.hasPrefix("You exceeded your current quota") == true)
    }

    @Test func anOpenAIRequestTooLargeForTheLimitIsPermanent() {
        let body =
            #"{"error":{"message":"Request too large for gpt-4o in organization org-x on tokens per min (TPM): "#
            + #"Limit 30000, Requested 45000. The input or output tokens must be reduced in order to run "#
            + #"successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#
        #expect(failure(openAI, response(429, [:], body))?.permanent == true)
    }

    @Test func xShouldRetryFalseIsPermanentForEveryProvider() {
        let headers: HTTPHeaders = ["x-should-retry": "false"]
        #expect(failure(openAI, response(429, headers, Self.openAIRateLimit))?.permanent == true)
        #expect(failure(together, response(429, headers, Self.openAIRateLimit))?.permanent == true)
        #expect(failure(anthropic, response(429, headers, Self.anthropicRateLimit))?.permanent == true)
        #expect(failure(openAI, response(502, headers, "Bad Gateway"))?.permanent == true)
        #expect(RateLimitHeaders.shouldRetry(["x-should-retry": "True"]) == true)
        #expect(RateLimitHeaders.shouldRetry([:]) == nil)
    }

    @Test func anOrdinaryRateLimitIsNotPermanent() {
        let headers: HTTPHeaders = ["retry-after": "1", "x-should-retry": "true"]
        #expect(failure(openAI, response(429, headers, Self.openAIRateLimit))?.permanent == false)
        #expect(failure(anthropic, response(429, headers, Self.anthropicRateLimit))?.permanent == false)
    }
}
