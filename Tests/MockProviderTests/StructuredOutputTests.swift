import LLMQCore
import Testing

@testable import MockProvider

/// JSON replies: `StructuredReply` itself, then each surface's way of asking for it.
@Suite struct StructuredOutputTests {
    func reply(_ schema: String, seed: Int64? = nil, choice: Int = 0) throws -> JSONValue {
        let text = StructuredReply.text(
            .schema(try JSONParser.parse(schema)), digest: 42, seed: seed, choice: choice, replyWords: 4)
        return try JSONParser.parse(text)
    }

    // MARK: - Schemas

    @Test func objectsHaveEveryPropertyInTheSchemasOrder() throws {
        let schema = #"""
            {"type":"object","properties":{"b":{"type":"string"},"a":{"type":"integer","minimum":3,"maximum":5},
             "c":{"type":"boolean"},"d":{"type":"number","minimum":0.5,"maximum":0.75},"e":{"type":"null"}},
             "required":["b"]}
            """#
        let value = try reply(schema)
        #expect(value.objectValue?.keys == ["b", "a", "c", "d", "e"])
        #expect(value["b"]?.stringValue?.isEmpty == false)
        #expect((3...5).contains(value["a"]?.intValue ?? 0))
        if case .bool = value["c"] {} else { Issue.record("c is not a boolean: \(String(describing: value["c"]))") }
        #expect((0.5...0.75).contains(value["d"]?.doubleValue ?? 9))
        #expect(value["e"] == .null)
        // The text is compact and keeps that order.
        let text = StructuredReply.text(
            .schema(try JSONParser.parse(schema)), digest: 42, seed: nil, choice: 0, replyWords: 4)
        #expect(text.hasPrefix("{\"b\":\""))
        #expect(!text.contains(" :") && !text.contains(", "))
    }

    @Test func refsEnumsConstsAndUnionsResolve() throws {
        let value = try reply(
            #"""
            {"type":"object","$defs":{"Unit":{"enum":["kg","lb"]},"Item":{"type":"object","properties":{
              "unit":{"$ref":"#/$defs/Unit"},"kind":{"const":"fruit"},"note":{"anyOf":[{"type":"null"},{"type":"string"}]},
              "size":{"type":["null","integer"],"exclusiveMinimum":10,"exclusiveMaximum":12}}}},
             "properties":{"items":{"type":"array","items":{"$ref":"#/$defs/Item"},"minItems":4,"maxItems":4},
              "pair":{"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"minItems":2,"maxItems":2}}}
            """#)
        let items = try #require(value["items"]?.arrayValue)
        #expect(items.count == 4)
        for item in items {
            #expect(["kg", "lb"].contains(item["unit"]?.stringValue ?? "?"))
            #expect(item["kind"] == .string("fruit"))
            #expect(item["note"]?.stringValue != nil)
            #expect(item["size"] == .int(11))
        }
        #expect(value["pair"]?[0]?.intValue != nil && value["pair"]?[1]?.stringValue != nil)
    }

    @Test func allOfMergesAndFormatsAndLengthsAreKept() throws {
        let value = try reply(
            #"""
            {"allOf":[{"type":"object","properties":{"when":{"type":"string","format":"date-time"}}},
             {"properties":{"id":{"type":"string","format":"uuid"},"day":{"type":"string","format":"date"},
              "mail":{"type":"string","format":"email"},"short":{"type":"string","maxLength":3},
              "long":{"type":"string","minLength":40}}}]}
            """#)
        let when = try #require(value["when"]?.stringValue)
        #expect(when.count == 20 && when.hasSuffix("Z") && when.contains("T"))
        let id = try #require(value["id"]?.stringValue)
        #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        #expect(value["day"]?.stringValue?.count == 10)
        #expect(value["mail"]?.stringValue?.hasSuffix("@example.com") == true)
        #expect((value["short"]?.stringValue?.count ?? 9) <= 3)
        #expect((value["long"]?.stringValue?.count ?? 0) >= 40)
    }

    @Test func geminisOpenAPISubsetIsReadToo() throws {
        let value = try reply(
            #"""
            {"type":"OBJECT","properties":{"z":{"type":"STRING","enum":["x","y"]},"n":{"type":"INTEGER"},
             "list":{"type":"ARRAY","items":{"type":"NUMBER"}},"ok":{"type":"BOOLEAN","nullable":true}},
             "property_ordering":["n","z","list","ok"]}
            """#)
        #expect(value.objectValue?.keys == ["n", "z", "list", "ok"])
        #expect(["x", "y"].contains(value["z"]?.stringValue ?? "?"))
        #expect(value["n"]?.intValue != nil)
        #expect(value["list"]?.arrayValue?.allSatisfy { $0.doubleValue != nil } == true)
    }

    @Test func recursiveSchemasEnd() throws {
        let value = try reply(
            #"""
            {"$ref":"#/definitions/Node","definitions":{"Node":{"type":"object","properties":{
              "name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/definitions/Node"}}},
              "required":["name"]}}}
            """#)
        #expect(value["name"]?.stringValue != nil)
    }

    @Test func repliesAreDeterministicAndSplitIntoPieces() throws {
        let schema = #"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#
        #expect(try reply(schema) == (try reply(schema)))
        #expect(try reply(schema, seed: 1) != (try reply(schema, seed: 2)))
        #expect(try reply(schema, choice: 1) != (try reply(schema)))
        let format = StructuredReply.Format.schema(try JSONParser.parse(schema))
        let text = StructuredReply.text(format, digest: 7, seed: nil, choice: 0, replyWords: 4)
        let pieces = StructuredReply.pieces(format, digest: 7, seed: nil, choice: 0, replyWords: 4)
        #expect(pieces.joined() == text)
        #expect(pieces.dropLast().allSatisfy { $0.count == 4 })
        let object = StructuredReply.text(.object, digest: 7, seed: nil, choice: 0, replyWords: 3)
        #expect(
            try JSONParser.parse(object)["reply"]
                == .string(MockReplies.text(digest: 7, seed: nil, tokens: 3, choice: 0)))
        let picked = StructuredReply.text(
            .enumText(try JSONParser.parse(#"{"type":"STRING","enum":["apples","pears"]}"#)), digest: 7, seed: nil,
            choice: 0, replyWords: 3)
        #expect(["apples", "pears"].contains(picked))
    }

    // MARK: - OpenAI

    static let answerSchema =
        #"{"type":"object","properties":{"answer":{"type":"integer"},"steps":{"type":"array","items":{"type":"string"}}},"#
        + #""required":["answer","steps"],"additionalProperties":false}"#

    func chat(_ server: MockProviderServer, _ extra: String, prompt: String = "Say hi.") throws -> RawHTTPResponse {
        try RawHTTPConnection(port: server.port).request(body: chatBody(prompt, extra: extra))
    }

    @Test func openAIJSONSchemaRepliesFitAndStreamTheSameText() async throws {
        try await withMockServer { server in
            let format =
                #","response_format":{"type":"json_schema","json_schema":{"name":"ans","strict":true,"schema":"#
                + Self.answerSchema + "}}"
            let json = try chat(server, format + ",\"n\":2").json()
            var contents: [String] = []
            for index in 0..<2 {
                let choice = try #require(json["choices"]?[index])
                let content = try #require(choice["message"]?["content"]?.stringValue)
                let value = try JSONParser.parse(content)
                #expect(value["answer"]?.intValue != nil)
                #expect(value["steps"]?.arrayValue != nil)
                #expect(choice["finish_reason"] == .string("stop"))
                contents.append(content)
            }
            let pieces = contents.map { StructuredReply.split($0).count }
            #expect(json["usage"]?["completion_tokens"] == .int(Int64(pieces.reduce(0, +))))

            let stream = try chat(server, format + ",\"stream\":true")
            let text = try stream.events.dropLast().map { try JSONParser.parse($0) }
                .compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
            #expect(text == contents[0])

            let cut = try chat(server, format + ",\"max_completion_tokens\":3").json()
            #expect(cut["choices"]?[0]?["finish_reason"] == .string("length"))
            #expect(cut["usage"]?["completion_tokens"] == .int(3))
            #expect(cut["choices"]?[0]?["message"]?["content"]?.stringValue.map(contents[0].hasPrefix) == true)
        }
    }

    @Test func openAIJSONModeNeedsTheWordJSON() async throws {
        try await withMockServer { server in
            let format = #","response_format":{"type":"json_object"}"#
            let refused = try chat(server, format)
            #expect(refused.status == 400)
            #expect(try refused.json()["error"]?["param"] == .string("messages"))
            let json = try chat(server, format, prompt: "Reply in JSON.").json()
            let content = try #require(json["choices"]?[0]?["message"]?["content"]?.stringValue)
            #expect(try JSONParser.parse(content)["reply"]?.stringValue != nil)
        }
    }

    @Test(arguments: [
        (#"{"type":"json_schema"}"#, "response_format.json_schema", "missing_required_parameter"),
        (
            #"{"type":"json_schema","json_schema":{"schema":{}}}"#, "response_format.json_schema.name",
            "missing_required_parameter"
        ),
        (#"{"type":"json_schema","json_schema":{"name":"a b"}}"#, "response_format.json_schema.name", "invalid_value"),
        (#"{"type":"xml"}"#, "response_format.type", "invalid_value"),
        (#""json""#, "response_format", "invalid_type"),
    ])
    func badOpenAIResponseFormatsAre400(_ format: String, _ param: String, _ code: String) async throws {
        try await withMockServer { server in
            let response = try chat(server, ",\"response_format\":" + format)
            #expect(response.status == 400)
            let error = try #require(try response.json()["error"])
            #expect(error["param"] == .string(param))
            #expect(error["code"] == .string(code))
        }
    }

    // MARK: - Anthropic

    func message(_ server: MockProviderServer, _ extra: String, maxTokens: Int = 256) throws -> RawHTTPResponse {
        try RawHTTPConnection(port: server.port).request(
            path: "/v1/messages",
            body: #"{"model":"claude-haiku-4-5","max_tokens":\#(maxTokens),"messages":[{"role":"user","content":"hi"}]"#
                + extra + "}",
            headers: [("x-api-key", "k"), ("anthropic-version", "2023-06-01")])
    }

    @Test func anthropicOutputConfigFormatGivesJSON() async throws {
        try await withMockServer { server in
            for extra in [
                #","output_config":{"effort":"low","format":{"type":"json_schema","schema":\#(Self.answerSchema)}}"#,
                #","output_format":{"type":"json_schema","schema":\#(Self.answerSchema)}"#,
            ] {
                let json = try message(server, extra).json()
                let text = try #require(json["content"]?[0]?["text"]?.stringValue)
                #expect(try JSONParser.parse(text)["answer"]?.intValue != nil)
                #expect(json["stop_reason"] == .string("end_turn"))
                #expect(json["usage"]?["output_tokens"] == .int(Int64(StructuredReply.split(text).count)))
            }
            let format = #","output_config":{"format":{"type":"json_schema","schema":\#(Self.answerSchema)}}"#
            let full = try message(server, format).json()["content"]?[0]?["text"]?.stringValue ?? "?"
            let events = try message(server, format + ",\"stream\":true").text.components(separatedBy: "\n\n")
                .filter { $0.hasPrefix("event: content_block_delta") }
                .map { try JSONParser.parse(String($0.split(separator: "\n")[1].dropFirst(6))) }
            #expect(events.compactMap { $0["delta"]?["text"]?.stringValue }.joined() == full)
            let cut = try message(server, format, maxTokens: 2).json()
            #expect(cut["stop_reason"] == .string("max_tokens"))
            #expect(cut["usage"]?["output_tokens"] == .int(2))
        }
    }

    @Test(arguments: [
        (
            #","output_config":{"format":{"type":"xml","schema":{}}}"#,
            "output_config.format.type: Input should be 'json_schema'"
        ),
        (#","output_config":{"format":{"type":"json_schema"}}"#, "output_config.format.schema: Field required"),
        (#","output_config":7"#, "output_config: Input should be a valid dictionary"),
    ])
    func badAnthropicOutputFormatsAre400(_ extra: String, _ text: String) async throws {
        try await withMockServer { server in
            let response = try message(server, extra)
            #expect(response.status == 400)
            #expect(try response.json()["error"]?["message"] == .string(text))
        }
    }

    // MARK: - Gemini

    func generate(_ server: MockProviderServer, _ config: String) throws -> RawHTTPResponse {
        try RawHTTPConnection(port: server.port).request(
            path: "/v1beta/models/gemini-2.5-flash:generateContent",
            body: #"{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":\#(config)}"#,
            headers: [("x-goog-api-key", "k")])
    }

    func text(_ response: RawHTTPResponse) throws -> String {
        try #require(try response.json()["candidates"]?[0]?["content"]?["parts"]?[0]?["text"]?.stringValue)
    }

    @Test func geminiResponseSchemasGiveJSONAndEnumsGiveAValue() async throws {
        try await withMockServer { server in
            let openAPI = #"{"type":"OBJECT","properties":{"n":{"type":"INTEGER"}},"required":["n"]}"#
            let schemaReply = try generate(
                server, #"{"responseMimeType":"application/json","responseSchema":\#(openAPI)}"#)
            #expect(try JSONParser.parse(try text(schemaReply))["n"]?.intValue != nil)
            #expect(
                try schemaReply.json()["usageMetadata"]?["candidatesTokenCount"]
                    == .int(Int64(StructuredReply.split(try text(schemaReply)).count)))
            let jsonSchema = try generate(
                server, #"{"responseMimeType":"application/json","responseJsonSchema":\#(Self.answerSchema)}"#)
            #expect(try JSONParser.parse(try text(jsonSchema))["steps"]?.arrayValue != nil)
            let free = try generate(server, #"{"responseMimeType":"application/json"}"#)
            #expect(try JSONParser.parse(try text(free))["reply"] != nil)
            let picked = try generate(
                server, #"{"responseMimeType":"text/x.enum","responseSchema":{"type":"STRING","enum":["a","b"]}}"#)
            #expect(["a", "b"].contains(try text(picked)))
            let cut = try generate(server, #"{"responseMimeType":"application/json","maxOutputTokens":2}"#)
            #expect(try cut.json()["candidates"]?[0]?["finishReason"] == .string("MAX_TOKENS"))
        }
    }

    @Test(arguments: [
        #"{"responseSchema":{"type":"STRING"}}"#, #"{"responseMimeType":"text/plain","responseJsonSchema":{}}"#,
        #"{"responseMimeType":"text/x.enum","responseSchema":{"type":"STRING"}}"#,
    ])
    func geminiSchemasNeedAMatchingMimeType(_ config: String) async throws {
        try await withMockServer { server in
            let response = try generate(server, config)
            #expect(response.status == 400)
            #expect(try response.json()["error"]?["status"] == .string("INVALID_ARGUMENT"))
        }
    }
}
