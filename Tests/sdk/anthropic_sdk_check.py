#!/usr/bin/env python3
"""Drives the official `anthropic` Python SDK against `llmq mock`, to show the fake
provider's Anthropic surface (PROVIDERS.md §3) is one a real client accepts:
messages, system prompts, streams, usage and prompt caching, structured output,
errors, rate limits and faults, each as the SDK sees it; and Message Batches
(PROVIDERS.md §4) through a whole cycle.

It installs nothing; Tests/sdk/run_sdk_checks.sh sets up a virtualenv and runs it:

    .build/sdk-venv/bin/python Tests/sdk/anthropic_sdk_check.py --llmq .build/debug/llmq

It starts its own `llmq mock` servers (one per set of knobs). Exit status 0 when
every check passes.
"""

import json
import sys
import time

import anthropic
import pydantic
from anthropic import Anthropic

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts, in the repository
from mock_process import Checks, Mock, llmq_binary  # noqa: E402 - after the line above

check = Checks()
MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "2+2?"}]


def client_for(mock, key="sk-ant-mock", **options):
    # The SDK adds /v1/messages itself: the base URL is the server's root.
    return Anthropic(base_url=mock.url, api_key=key, **options)


class Answer(pydantic.BaseModel):
    answer: int
    unit: str
    steps: list[str]


def replies(client):
    """A plain message, the system prompt, the cap, headers; returns the reply."""
    reply = client.messages.create(model=MODEL, max_tokens=64, system="Be terse.", messages=MESSAGES)
    check("create returns a Message", isinstance(reply, anthropic.types.Message))
    check("id, type and role", reply.id.startswith("msg_") and reply.type == "message" and reply.role == "assistant")
    check("one text block", len(reply.content) == 1 and reply.content[0].type == "text" and bool(reply.content[0].text))
    check("stop_reason end_turn", reply.stop_reason == "end_turn" and reply.stop_sequence is None)
    check("model echoed", reply.model == MODEL)
    usage = reply.usage
    check("usage has input and output tokens", usage.input_tokens > 0 and usage.output_tokens == 8, str(usage))
    check("usage cache fields are 0 without cache_control",
          usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0, str(usage))
    text = reply.content[0].text
    check("same request, same reply", client.messages.create(
        model=MODEL, max_tokens=64, system="Be terse.", messages=MESSAGES).content[0].text == text)

    # System prompts: a string and text blocks are the same prompt; none is another.
    blocks = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                    system=[{"type": "text", "text": "Be "}, {"type": "text", "text": "terse."}])
    bare = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    check("system as text blocks equals system as a string", blocks.content[0].text == text)
    check("the system prompt changes the reply", bare.content[0].text != text)
    check("the system prompt counts as input", usage.input_tokens > bare.usage.input_tokens)

    cut = client.messages.create(model=MODEL, max_tokens=3, system="Be terse.", messages=MESSAGES)
    check("max_tokens cuts with stop_reason max_tokens",
          cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
          and text.startswith(cut.content[0].text), str(cut))

    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    check("request-id header", raw.headers.get("request-id", "").startswith("req_"))
    check("raw response parses", raw.parse().content[0].text == bare.content[0].text)
    return reply


def streams(client, reply):
    """The stream helper rebuilds the message; the raw events come in strict order."""
    text, usage = reply.content[0].text, reply.usage
    with client.messages.stream(model=MODEL, max_tokens=64, system="Be terse.", messages=MESSAGES) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    check("stream text equals the reply", "".join(pieces) == text and len(pieces) == 8, str(pieces))
    check("stream final message", final.stop_reason == "end_turn" and final.content[0].text == text)
    check("stream final usage", final.usage.output_tokens == usage.output_tokens
          and final.usage.input_tokens == usage.input_tokens, str(final.usage))
    events = list(client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True))
    kinds = [event.type for event in events]
    check("stream events in order",
          kinds[:2] == ["message_start", "content_block_start"]
          and kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
          and set(kinds[2:-3]) == {"content_block_delta"}, str(kinds))
    check("message_delta carries the cumulative output tokens",
          events[-2].usage.output_tokens == 8 and events[-2].delta.stop_reason == "end_turn")


def caching(client):
    """Prompt caching is opt-in: cache_control writes the prefix, the next call reads it."""
    long_system = [{"type": "text", "text": "policy " * 800, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model=MODEL, max_tokens=8, system=long_system, messages=MESSAGES).usage
    second = client.messages.create(model=MODEL, max_tokens=8, system=long_system, messages=MESSAGES).usage
    check("cache_control: the first call writes the cache",
          lambda: first.cache_creation_input_tokens >= 1024 and first.cache_read_input_tokens == 0
          and first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens, str(first))
    check("cache_control: the second call reads it",
          lambda: second.cache_read_input_tokens == first.cache_creation_input_tokens
          and second.cache_creation_input_tokens == 0
          and second.input_tokens == first.input_tokens, str(second))
    plain_long = [{"type": "text", "text": "rules " * 800}]
    for _ in range(2):
        uncached = client.messages.create(model=MODEL, max_tokens=8, system=plain_long, messages=MESSAGES).usage
    check("without cache_control nothing is cached",
          uncached.cache_read_input_tokens == 0 and uncached.cache_creation_input_tokens == 0, str(uncached))
    hour = client.messages.create(
        model=MODEL, max_tokens=8, messages=MESSAGES,
        system=[{"type": "text", "text": "hourly " * 800, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]).usage
    check("a 1h breakpoint is reported as a 1h write",
          lambda: hour.cache_creation.ephemeral_1h_input_tokens == hour.cache_creation_input_tokens > 0, str(hour))


def structured_output(client):
    """The reply is JSON that fits the schema, both ways the SDK asks for it."""
    parsed = client.messages.parse(model=MODEL, max_tokens=256, messages=MESSAGES, output_format=Answer)
    check("messages.parse returns the schema's type", isinstance(parsed.parsed_output, Answer), str(parsed))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "tags": {
        "type": "array", "items": {"type": "string", "enum": ["a", "b"]}}}, "required": ["ok", "tags"],
        "additionalProperties": False}
    shaped = client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES,
                                    output_config={"format": {"type": "json_schema", "schema": schema}})
    try:
        value = json.loads(shaped.content[0].text)
        fits = isinstance(value.get("ok"), bool) and all(tag in ("a", "b") for tag in value.get("tags"))
    except (ValueError, AttributeError, TypeError):
        value, fits = shaped.content[0].text, False
    check("output_config json_schema gives JSON that fits", fits, str(value))


def bad_requests(client):
    """Errors the SDK must classify. Required fields are checked by the SDK itself,
    so these go past it with a raw post."""
    for name, body, needle in [
        ("missing max_tokens", {"model": MODEL, "messages": MESSAGES}, "max_tokens: Field required"),
        ("temperature above 1", {"model": MODEL, "max_tokens": 5, "messages": MESSAGES, "temperature": 1.5},
         "temperature"),
        ("a system message in messages", {"model": MODEL, "max_tokens": 5,
                                          "messages": [{"role": "system", "content": "x"}]}, "system"),
    ]:
        check.expect_raise(
            f"{name} raises BadRequestError", anthropic.BadRequestError,
            lambda body=body: client.post("/v1/messages", body=body, cast_to=object),
            lambda error, needle=needle: error.status_code == 400 and error.type == "invalid_request_error"
            and needle in error.api_message and error.request_id.startswith("req_"),
            lambda error: f"{error.type}: {error.api_message}")


def wait_for_batch(client, batch, seconds=15):
    """Polls until the batch has ended; returns it and the statuses seen."""
    seen = [batch.processing_status]
    deadline = time.monotonic() + seconds
    while batch.processing_status != "ended" and time.monotonic() < deadline:
        time.sleep(0.1)
        batch = client.messages.batches.retrieve(batch.id)
        if batch.processing_status != seen[-1]:
            seen.append(batch.processing_status)
    return batch, seen


def batch_requests(count):
    requests = [{"custom_id": f"q{i}", "params": {"model": MODEL, "max_tokens": 64,
                                                  "messages": [{"role": "user", "content": f"Question {i}?"}]}}
                for i in range(count)]
    # The online endpoint refuses this one (no max_tokens): an errored result.
    requests.append({"custom_id": "no-max", "params": {"model": MODEL, "messages": MESSAGES}})
    return requests


def batches(binary):
    """messages.batches: create, retrieve until ended, results, list, cancel, delete."""
    with Mock(binary, "--reply-tokens", "8", "--batch-seconds", "1") as mock:
        client = client_for(mock)
        requests = batch_requests(4)
        batch = client.messages.batches.create(requests=requests)
        check("batches.create answers in_progress with every request processing",
              batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
              and batch.request_counts.processing == 5 and batch.results_url is None
              and (batch.expires_at - batch.created_at).total_seconds() == 86400, str(batch))
        batch, seen = wait_for_batch(client, batch)
        check("retrieve until ended", batch.processing_status == "ended" and seen == ["in_progress", "ended"], str(seen))
        counts = batch.request_counts
        check("request_counts after the end", counts.processing == 0 and counts.succeeded == 4 and counts.errored == 1
              and counts.canceled == 0 and counts.expired == 0, str(counts))
        check("results_url and ended_at set", batch.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")
              and batch.ended_at is not None, str(batch))
        results = {entry.custom_id: entry.result for entry in client.messages.batches.results(batch.id)}
        check("results has every custom_id once", sorted(results) == sorted(r["custom_id"] for r in requests),
              str(sorted(results)))
        online = client.messages.create(**requests[1]["params"])
        check("a succeeded result is the online answer", results["q1"].type == "succeeded"
              and results["q1"].message.content[0].text == online.content[0].text, str(results["q1"]))
        check("a refused request is errored with the online error", results["no-max"].type == "errored"
              and results["no-max"].error.error.type == "invalid_request_error"
              and "max_tokens" in results["no-max"].error.error.message, str(results["no-max"]))
        listed = client.messages.batches.list(limit=10)
        check("batches.list has it", [item.id for item in listed.data] == [batch.id] and listed.has_more is False,
              str(listed))
        deleted = client.messages.batches.delete(batch.id)
        check("delete an ended batch", deleted.type == "message_batch_deleted" and deleted.id == batch.id)
        check.expect_raise(
            "a deleted batch is gone (NotFoundError)", anthropic.NotFoundError,
            lambda: client.messages.batches.retrieve(batch.id))
        check.expect_raise(
            "a repeated custom_id raises BadRequestError", anthropic.BadRequestError,
            lambda: client.messages.batches.create(requests=requests[:2] + requests[:1]),
            lambda error: "custom_id" in error.api_message, lambda error: error.api_message)
        stats = mock.stats()
        check("stats count the batch", stats["batches_created"] == 1
              and stats["batches_created_by_provider"]["anthropic"] == 1, str(stats))

    with Mock(binary, "--batch-seconds", "60") as mock:
        client = client_for(mock)
        batch = client.messages.batches.create(requests=batch_requests(2))
        check.expect_raise(
            "delete while in progress raises BadRequestError", anthropic.BadRequestError,
            lambda: client.messages.batches.delete(batch.id))
        canceling = client.messages.batches.cancel(batch.id)
        check("cancel answers canceling", canceling.processing_status == "canceling"
              and canceling.cancel_initiated_at is not None, str(canceling))
        ended, _ = wait_for_batch(client, canceling)
        check("the next retrieve shows it ended, every request canceled",
              ended.processing_status == "ended" and ended.request_counts.canceled == 3, str(ended))
        kinds = {entry.result.type for entry in client.messages.batches.results(batch.id)}
        check("results say canceled", kinds == {"canceled"}, str(kinds))

    with Mock(binary, "--batch-expire", "1") as mock:
        client = client_for(mock)
        batch, _ = wait_for_batch(client, client.messages.batches.create(requests=batch_requests(5)))
        kinds = sorted(entry.result.type for entry in client.messages.batches.results(batch.id))
        check("an expiring batch keeps the results run before, the rest expired",
              batch.request_counts.expired == 3 and kinds.count("expired") == 3 and len(kinds) == 6, str(kinds))


def run(binary):
    with Mock(binary, "--reply-tokens", "8") as mock:
        client = client_for(mock)
        reply = None

        def plain():
            nonlocal reply
            reply = replies(client)

        check.guard("replies", plain)
        if reply is not None:
            check.guard("streams", lambda: streams(client, reply))
        check.guard("prompt caching", lambda: caching(client))
        check.guard("structured output", lambda: structured_output(client))
        check.guard("bad requests", lambda: bad_requests(client))

    with Mock(binary, "--api-key", "sk-ant-right", "--model", MODEL) as mock:
        check.expect_raise(
            "wrong key raises AuthenticationError", anthropic.AuthenticationError,
            lambda: client_for(mock, key="sk-ant-wrong").messages.create(model=MODEL, max_tokens=5, messages=MESSAGES),
            lambda error: error.status_code == 401 and error.type == "authentication_error"
            and "sk-ant-wrong" not in str(error))
        check("the right key works as a Bearer token",
              client_for(mock, key="sk-ant-right").messages.create(
                  model=MODEL, max_tokens=5, messages=MESSAGES).stop_reason == "max_tokens")
        check.expect_raise(
            "unknown model raises NotFoundError", anthropic.NotFoundError,
            lambda: client_for(mock, key="sk-ant-right").messages.create(
                model="claude-nope", max_tokens=5, messages=MESSAGES),
            lambda error: error.type == "not_found_error")

    # 2 requests/s, bucket of 1: the second call at once gets 429 with retry-after 1;
    # the SDK waits that long and retries.
    with Mock(binary, "--rps", "2", "--burst", "1") as mock:
        client = client_for(mock)
        client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
        started = time.monotonic()
        client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
        waited = time.monotonic() - started
        stats = mock.stats()
        check("SDK retries a 429 after retry-after and succeeds",
              stats["rate_limited"] >= 1 and waited >= 0.5, f"waited {waited:.2f}s, stats {stats}")
        check.expect_raise(
            "429 without retries raises RateLimitError with the headers", anthropic.RateLimitError,
            lambda: client_for(mock, max_retries=0).messages.create(model=MODEL, max_tokens=5, messages=MESSAGES),
            lambda error: error.type == "rate_limit_error" and error.response.headers.get("retry-after") == "1"
            and error.response.headers.get("anthropic-ratelimit-requests-limit") == "1"
            and error.response.headers.get("anthropic-ratelimit-requests-reset", "").endswith("Z"),
            lambda error: str(dict(error.response.headers)))

    faults = [
        ("--fault-500", anthropic.InternalServerError, "500 raises InternalServerError (api_error)",
         lambda error: error.status_code == 500 and error.type == "api_error"),
        ("--fault-503", anthropic.OverloadedError, "529 raises OverloadedError",
         lambda error: error.status_code == 529 and error.type == "overloaded_error"),
        ("--fault-reset", anthropic.APIConnectionError, "reset raises APIConnectionError", lambda error: True),
        ("--fault-stall", anthropic.APITimeoutError, "stall raises APITimeoutError", lambda error: True),
    ]
    for flag, error_type, name, condition in faults:
        with Mock(binary, flag, "1") as mock:
            check.expect_raise(
                name, error_type,
                lambda: client_for(mock, max_retries=0, timeout=1.0).messages.create(
                    model=MODEL, max_tokens=5, messages=MESSAGES),
                condition)

    with Mock(binary, "--fault-stream-error", "1") as mock:
        check.expect_raise(
            "in-stream error event raises APIStatusError (overloaded_error)", anthropic.APIStatusError,
            lambda: list(client_for(mock, max_retries=0).messages.create(
                model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)),
            lambda error: error.type == "overloaded_error" and "Overloaded" in str(error))

    started = time.monotonic()
    check.guard("message batches", lambda: batches(binary))
    print(f"     (batch checks took {time.monotonic() - started:.1f}s)")


def main():
    binary = llmq_binary(__doc__)
    print(f"anthropic {anthropic.__version__}")
    run(binary)
    sys.exit(check.summary("anthropic sdk"))


if __name__ == "__main__":
    main()
