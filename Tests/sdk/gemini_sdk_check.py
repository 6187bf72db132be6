#!/usr/bin/env python3
"""Drives the official `google-genai` Python SDK against `llmq mock`, to show the
fake provider's Gemini surface (PROVIDERS.md §5) is one a real client accepts:
generateContent under /v1 and /v1beta, system instructions, streams, usage
metadata, structured output, errors, rate limits and faults, each as the SDK
sees it; and Batch Mode with inline requests and with a file uploaded through the
Files API, under both versions.

It installs nothing; Tests/sdk/run_sdk_checks.sh sets up a virtualenv and runs it:

    .build/sdk-venv/bin/python Tests/sdk/gemini_sdk_check.py --llmq .build/debug/llmq

It starts its own `llmq mock` servers (one per set of knobs). Exit status 0 when
every check passes.
"""

import enum
import io
import json
import sys
import time

import pydantic
from google import genai
from google.genai import errors, types

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts, in the repository
from mock_process import Checks, Mock, llmq_binary  # noqa: E402 - after the line above

check = Checks()
MODEL = "gemini-2.5-flash"
PROMPT = "2+2?"
SYSTEM = "Be terse."


def client_for(mock, key="g-mock", api_version="v1beta", **options):
    # `timeout` is in milliseconds; retries are off unless `retry_options` is set.
    return genai.Client(api_key=key, http_options=types.HttpOptions(
        base_url=mock.url, api_version=api_version, **options))


def ask(mock, model=MODEL, stream=False, **client_options):
    """One call on a fresh client. The client stays referenced until the answer is
    read: a dropped `genai.Client` closes its HTTP client under the call."""
    client = client_for(mock, **client_options)
    if stream:
        return list(client.models.generate_content_stream(model=model, contents=PROMPT))
    return client.models.generate_content(model=model, contents=PROMPT)


class Unit(enum.Enum):
    APPLES = "apples"
    PEARS = "pears"


class Answer(pydantic.BaseModel):
    answer: int
    unit: Unit
    steps: list[str]
    exact: bool


def replies(client, label):
    """A plain answer, the system instruction, the cap; returns the reply."""
    config = types.GenerateContentConfig(system_instruction=SYSTEM)
    reply = client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    check(f"{label}: text", bool(reply.text) and reply.text == reply.candidates[0].content.parts[0].text)
    candidate = reply.candidates[0]
    check(f"{label}: role model, finish STOP",
          candidate.content.role == "model" and candidate.finish_reason == types.FinishReason.STOP)
    usage = reply.usage_metadata
    check(f"{label}: usage adds up", lambda: usage.prompt_token_count > 0 and usage.candidates_token_count == 8
          and usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count, str(usage))
    check(f"{label}: prompt tokens by modality",
          lambda: usage.prompt_tokens_details[0].modality == types.MediaModality.TEXT
          and usage.prompt_tokens_details[0].token_count == usage.prompt_token_count, str(usage))
    check(f"{label}: model version and response id", reply.model_version == MODEL and bool(reply.response_id))
    check(f"{label}: same request, same reply",
          client.models.generate_content(model=MODEL, contents=PROMPT, config=config).text == reply.text)
    bare = client.models.generate_content(model=MODEL, contents=PROMPT)
    check(f"{label}: the system instruction changes the reply", bare.text != reply.text)
    check(f"{label}: the system instruction counts as prompt",
          usage.prompt_token_count > bare.usage_metadata.prompt_token_count)
    chat = [types.Content(role="user", parts=[types.Part(text=PROMPT)]),
            types.Content(role="model", parts=[types.Part(text="4")]),
            types.Content(role="user", parts=[types.Part(text="and 3+3?")])]
    turns = client.models.generate_content(model=MODEL, contents=chat)
    check(f"{label}: a conversation is answered", bool(turns.text) and turns.text != bare.text)
    cut = client.models.generate_content(
        model=MODEL, contents=PROMPT,
        config=types.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=3))
    check(f"{label}: max_output_tokens cuts with MAX_TOKENS",
          cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
          and cut.usage_metadata.candidates_token_count == 3 and reply.text.startswith(cut.text), str(cut))
    return reply


def streams(client, reply):
    """Chunks carry the text and cumulative usage; only the last has a finish reason."""
    chunks = list(client.models.generate_content_stream(
        model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(system_instruction=SYSTEM)))
    check("stream text equals the reply", "".join(chunk.text for chunk in chunks) == reply.text, str(chunks))
    finishes = [chunk.candidates[0].finish_reason for chunk in chunks]
    check("stream finish reason only on the last chunk",
          finishes[-1] == types.FinishReason.STOP and not any(finishes[:-1]), str(finishes))
    counts = [chunk.usage_metadata.candidates_token_count for chunk in chunks]
    check("stream usage is cumulative", counts == sorted(counts) and counts[-1] == 8, str(counts))
    check("stream chunks share the response id", len({chunk.response_id for chunk in chunks}) == 1)


def structured_output(client):
    """JSON mode, a response schema (the OpenAPI subset) and a JSON schema."""
    parsed = client.models.generate_content(
        model=MODEL, contents=PROMPT,
        config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=Answer))
    check("response_schema: parsed is the schema's type", isinstance(parsed.parsed, Answer), parsed.text)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "tags": {
        "type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 2}},
        "required": ["ok", "tags"]}
    shaped = client.models.generate_content(
        model=MODEL, contents=PROMPT,
        config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema))
    try:
        value = json.loads(shaped.text)
        fits = isinstance(value["ok"], bool) and len(value["tags"]) >= 2 and set(value["tags"]) <= {"a", "b"}
    except (ValueError, KeyError, TypeError):
        value, fits = shaped.text, False
    check("response_json_schema: JSON that fits", fits, str(value))
    free = client.models.generate_content(
        model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(response_mime_type="application/json"))
    check("application/json without a schema: valid JSON", lambda: json.loads(free.text) is not None, free.text)
    picked = client.models.generate_content(
        model=MODEL, contents=PROMPT,
        config=types.GenerateContentConfig(response_mime_type="text/x.enum", response_schema=Unit))
    check("text/x.enum: one of the values", picked.parsed in (Unit.APPLES, Unit.PEARS), picked.text)


def bad_requests(client):
    """Errors the SDK raises as ClientError, with the google.rpc status."""
    check.expect_raise(
        "temperature 3 raises ClientError INVALID_ARGUMENT", errors.ClientError,
        lambda: client.models.generate_content(
            model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(temperature=3)),
        lambda error: error.code == 400 and error.status == "INVALID_ARGUMENT" and "temperature" in error.message)
    check.expect_raise(
        "a schema without a JSON mime type raises ClientError", errors.ClientError,
        lambda: client.models.generate_content(
            model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(response_schema=Answer)),
        lambda error: error.code == 400 and error.status == "INVALID_ARGUMENT")


ENDED_STATES = {types.JobState.JOB_STATE_SUCCEEDED, types.JobState.JOB_STATE_FAILED,
                types.JobState.JOB_STATE_CANCELLED, types.JobState.JOB_STATE_EXPIRED}


def wait_for_batch(client, job, seconds=15):
    """Polls until the job has ended; returns it and the states seen."""
    seen = [job.state]
    deadline = time.monotonic() + seconds
    while job.state not in ENDED_STATES and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.batches.get(name=job.name)
        if job.state != seen[-1]:
            seen.append(job.state)
    return job, seen


def inline_requests(count):
    return [{"contents": f"Question {i}?", "metadata": {"key": f"q{i}"}} for i in range(count)]


def batches(mock, version):
    """client.batches with inline requests and with an uploaded file, under `version`."""
    label = f"{version} batch"
    client = client_for(mock, api_version=version)
    job = client.batches.create(model=MODEL, src=inline_requests(3), config={"display_name": "inline-job"})
    check(f"{label}: create gives a pending job with its display name",
          job.name.startswith("batches/") and job.state == types.JobState.JOB_STATE_PENDING
          and job.display_name == "inline-job" and job.model == f"models/{MODEL}", str(job))
    job, seen = wait_for_batch(client, job)
    check(f"{label}: get until succeeded", job.state == types.JobState.JOB_STATE_SUCCEEDED
          and types.JobState.JOB_STATE_RUNNING in seen and job.end_time is not None, str(seen))
    responses = job.dest.inlined_responses if job.dest else []
    keys = [response.metadata["key"] for response in responses]
    online = client.models.generate_content(model=MODEL, contents="Question 1?")
    check(f"{label}: inlined responses keyed by metadata.key", keys == ["q0", "q1", "q2"], str(keys))
    check(f"{label}: an inlined response is the online answer",
          lambda: responses[1].response.text == online.text and responses[1].error is None, str(responses[1:2]))
    listed = [item.name for item in client.batches.list(config={"page_size": 10})]
    check(f"{label}: batches.list has it", job.name in listed, str(listed))

    lines = "".join(json.dumps({"key": f"f{i}", "request": {"contents": [{"role": "user", "parts": [
        {"text": f"Question {i}?"}]}]}}) + "\n" for i in range(4)).encode()
    uploaded = client.files.upload(file=io.BytesIO(lines), config={"mime_type": "application/jsonl",
                                                                    "display_name": "requests"})
    check(f"{label}: files.upload (resumable)", uploaded.name.startswith("files/")
          and uploaded.size_bytes == len(lines) and uploaded.display_name == "requests"
          and uploaded.state == types.FileState.ACTIVE, str(uploaded))
    check(f"{label}: files.get", client.files.get(name=uploaded.name).size_bytes == len(lines))
    job, _ = wait_for_batch(client, client.batches.create(model=MODEL, src=uploaded.name,
                                                          config={"display_name": "file-job"}))
    check(f"{label}: a file job succeeds with a responses file", job.state == types.JobState.JOB_STATE_SUCCEEDED
          and job.dest is not None and job.dest.file_name is not None, str(job))
    if job.dest is not None and job.dest.file_name is not None:
        data = client.files.download(file=job.dest.file_name)
        results = {line["key"]: line for line in map(json.loads, data.decode().splitlines())}
        check(f"{label}: responses file keyed by key", sorted(results) == [f"f{i}" for i in range(4)], str(results))
        text = results.get("f1", {}).get("response", {}).get("candidates", [{}])[0].get("content", {}).get(
            "parts", [{}])[0].get("text")
        check(f"{label}: a file response is the online answer", text == online.text, str(results.get("f1")))
    client.files.delete(name=uploaded.name)
    check.expect_raise(f"{label}: a deleted file is gone", errors.ClientError,
                       lambda: client.files.get(name=uploaded.name), lambda error: error.code in (403, 404))
    client.batches.delete(name=job.name)
    check.expect_raise(f"{label}: a deleted batch is gone", errors.ClientError,
                       lambda: client.batches.get(name=job.name), lambda error: error.code == 404)


def batch_knobs(binary):
    """Cancel on a slow batch, an expiring batch, failing lines."""
    with Mock(binary, "--batch-seconds", "60") as mock:
        client = client_for(mock, api_version="v1")
        job = client.batches.create(model=MODEL, src=inline_requests(2), config={"display_name": "slow"})
        client.batches.cancel(name=job.name)
        job = client.batches.get(name=job.name)
        check("batch cancel: the job is cancelled", job.state == types.JobState.JOB_STATE_CANCELLED, str(job))
    with Mock(binary, "--batch-expire", "1") as mock:
        client = client_for(mock, api_version="v1")
        job, _ = wait_for_batch(client, client.batches.create(model=MODEL, src=inline_requests(4)))
        answered = [response for response in job.dest.inlined_responses if response.response is not None]
        check("batch expiry: half the responses, the rest errors", job.state == types.JobState.JOB_STATE_EXPIRED
              and len(answered) == 2 and len(job.dest.inlined_responses) == 4, str(job))
    with Mock(binary, "--batch-fail-lines", "1") as mock:
        client = client_for(mock)
        job, _ = wait_for_batch(client, client.batches.create(model=MODEL, src=inline_requests(2)))
        check("batch fail lines: every response is an error", all(
            response.error is not None and response.response is None for response in job.dest.inlined_responses),
            str(job.dest))


def run(binary):
    started = time.monotonic()
    with Mock(binary, "--reply-tokens", "8", "--batch-seconds", "1") as mock:
        for version in ["v1beta", "v1"]:
            check.guard(f"{version}: batches", lambda version=version: batches(mock, version))
        check("batch stats: created and uploaded", lambda: mock.stats()["batches_created_by_provider"]["gemini"] == 4
              and mock.stats()["files_uploaded"] == 2, str(mock.stats()))
    check.guard("batch knobs", lambda: batch_knobs(binary))
    print(f"     (batch checks took {time.monotonic() - started:.1f}s)")

    with Mock(binary, "--reply-tokens", "8") as mock:
        for version in ["v1beta", "v1"]:
            client = client_for(mock, api_version=version)
            reply = None

            def plain(client=client, version=version):
                nonlocal reply
                reply = replies(client, version)

            check.guard(f"{version}: replies", plain)
        client = client_for(mock)
        if reply is not None:
            check.guard("streams", lambda: streams(client, reply))
        check.guard("structured output", lambda: structured_output(client))
        check.guard("bad requests", lambda: bad_requests(client))

    with Mock(binary, "--api-key", "g-right", "--model", MODEL) as mock:
        check.expect_raise(
            "wrong key raises ClientError API_KEY_INVALID", errors.ClientError,
            lambda: ask(mock, key="g-wrong"),
            lambda error: error.code == 400 and error.status == "INVALID_ARGUMENT"
            and error.details["error"]["details"][0]["reason"] == "API_KEY_INVALID" and "g-wrong" not in str(error))
        check("the right key works",
              bool(ask(mock, key="g-right").text))
        check.expect_raise(
            "unknown model raises ClientError NOT_FOUND", errors.ClientError,
            lambda: ask(mock, model="gemini-nope", key="g-right"),
            lambda error: error.code == 404 and error.status == "NOT_FOUND")

    # 2 requests/s, bucket of 1: the second call at once gets 429 with a RetryInfo
    # delay in the body. The SDK retries only when asked to, and on its own backoff.
    with Mock(binary, "--rps", "2", "--burst", "1") as mock:
        client = client_for(mock)
        client.models.generate_content(model=MODEL, contents=PROMPT)
        check.expect_raise(
            "429 raises ClientError RESOURCE_EXHAUSTED with RetryInfo", errors.ClientError,
            lambda: client.models.generate_content(model=MODEL, contents=PROMPT),
            lambda error: error.code == 429 and error.status == "RESOURCE_EXHAUSTED" and any(
                detail.get("@type", "").endswith("RetryInfo") and detail["retryDelay"].endswith("s")
                for detail in error.details["error"]["details"]),
            lambda error: str(error.details))
        time.sleep(0.6)
        retrying = client_for(mock, retry_options=types.HttpRetryOptions(attempts=3, initial_delay=0.6, jitter=0))
        retrying.models.generate_content(model=MODEL, contents=PROMPT)
        started = time.monotonic()
        retrying.models.generate_content(model=MODEL, contents=PROMPT)
        waited = time.monotonic() - started
        check("with HttpRetryOptions the SDK retries a 429 and succeeds",
              mock.stats()["rate_limited"] >= 2 and waited >= 0.3, f"waited {waited:.2f}s")

    faults = [
        ("--fault-500", errors.ServerError, "500 raises ServerError INTERNAL",
         lambda error: error.code == 500 and error.status == "INTERNAL"),
        ("--fault-503", errors.ServerError, "503 raises ServerError UNAVAILABLE",
         lambda error: error.code == 503 and error.status == "UNAVAILABLE"),
        ("--fault-reset", Exception, "reset raises a transport error",
         lambda error: not isinstance(error, errors.APIError)),
        ("--fault-stall", Exception, "stall raises a timeout",
         lambda error: "Timeout" in type(error).__name__),
    ]
    for flag, error_type, name, condition in faults:
        with Mock(binary, flag, "1") as mock:
            check.expect_raise(
                name, error_type,
                lambda: ask(mock, timeout=1000),
                condition, lambda error: f"{type(error).__name__}: {error}")

    with Mock(binary, "--fault-stream-error", "1") as mock:
        check.expect_raise(
            "in-stream error raises ServerError", errors.ServerError,
            lambda: ask(mock, stream=True),
            lambda error: error.code == 500 and error.status == "INTERNAL")


def main():
    binary = llmq_binary(__doc__)
    print(f"google-genai {genai.__version__}")
    run(binary)
    sys.exit(check.summary("gemini sdk"))


if __name__ == "__main__":
    main()
