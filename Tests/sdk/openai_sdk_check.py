#!/usr/bin/env python3
"""Drives the official `openai` Python SDK against `llmq mock`, to show the fake
provider's OpenAI surface is one a real client accepts: replies, streams,
structured output, errors, rate limits and faults, each as the SDK sees it; the
Files and Batch APIs through a whole batch cycle (PROVIDERS.md §2); and the same
SDK against the Together surface (PROVIDERS.md §6), as Together's users drive it.

It installs nothing. Tests/sdk/run_sdk_checks.sh sets up a virtualenv and runs it
with the anthropic and gemini checks; or set one up yourself:

    python3 -m venv /tmp/openai-venv && /tmp/openai-venv/bin/pip install openai
    swift build --product llmq
    /tmp/openai-venv/bin/python Tests/sdk/openai_sdk_check.py --llmq .build/debug/llmq

It starts its own `llmq mock` servers (one per set of knobs). With OPENAI_BASE_URL
set, it also runs the basic checks against that server (any API key accepted).
Exit status 0 when every check passes.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

import openai
import pydantic
from openai import OpenAI

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts, in the repository
from mock_process import llmq_binary  # noqa: E402 - after the line above

FAILURES = []
PASSED = []


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name + (f"  ({detail})" if detail and not condition else ""))
    if not condition:
        FAILURES.append(name)
    else:
        PASSED.append(name)


class Mock:
    """One `llmq mock` process, stopped on exit."""

    def __init__(self, binary, *flags):
        self.process = subprocess.Popen(
            [binary, "mock", "--port", "0", "--threads", "1", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline().strip()
        assert line.startswith("listening on "), line
        self.url = line[len("listening on "):]
        self.base_url = self.url + "/v1"

    def stats(self):
        with urllib.request.urlopen(self.url + "/_mock/stats") as response:
            return json.load(response)

    def client(self, key="sk-mock", **options):
        return OpenAI(base_url=self.base_url, api_key=key, **options)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.terminate()
        self.process.wait(timeout=10)


MESSAGES = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"}]
# Together serves models by `org/name`; the mock answers such names in Together's shape.
TOGETHER_MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"


class Answer(pydantic.BaseModel):
    answer: int
    unit: str
    steps: list[str]


def structured_checks(client, label, model="gpt-4o-mini"):
    """response_format: a JSON schema the reply fits, and JSON mode."""
    try:
        parsed = client.chat.completions.parse(model=model, messages=MESSAGES, response_format=Answer)
        check(f"{label}: parse with a schema gives the schema's type",
              isinstance(parsed.choices[0].message.parsed, Answer), parsed.choices[0].message.content)
    except (openai.APIError, pydantic.ValidationError) as error:
        check(f"{label}: parse with a schema gives the schema's type", False, f"{type(error).__name__}: {error}")
    json_mode = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Answer in JSON: 2+2?"}],
        response_format={"type": "json_object"})
    try:
        value = json.loads(json_mode.choices[0].message.content)
    except ValueError:
        value = None
    check(f"{label}: json_object gives a JSON object", isinstance(value, dict), json_mode.choices[0].message.content)


def basic_checks(client, label):
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=7)
    check(f"{label}: create returns a ChatCompletion", isinstance(reply, openai.types.chat.ChatCompletion))
    check(f"{label}: id and object", reply.id.startswith("chatcmpl-") and reply.object == "chat.completion")
    choice = reply.choices[0]
    check(f"{label}: message", choice.message.role == "assistant" and bool(choice.message.content))
    check(f"{label}: finish_reason stop", choice.finish_reason == "stop")
    usage = reply.usage
    check(f"{label}: usage adds up", usage.total_tokens == usage.prompt_tokens + usage.completion_tokens)
    check(f"{label}: cached_tokens parsed", usage.prompt_tokens_details.cached_tokens == 0)
    check(f"{label}: same request, same reply",
          client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=7)
          .choices[0].message.content == choice.message.content)

    many = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=3)
    check(f"{label}: n=3 gives three choices", [c.index for c in many.choices] == [0, 1, 2])

    cut = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=7, max_completion_tokens=3)
    check(f"{label}: max_completion_tokens cuts with finish_reason length",
          cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3
          and choice.message.content.startswith(cut.choices[0].message.content))

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    check(f"{label}: x-request-id header", raw.headers.get("x-request-id", "").startswith("req_"))

    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, seed=7, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(f"{label}: stream text equals the reply", text == choice.message.content, text)
    check(f"{label}: stream first delta has the role", chunks[0].choices[0].delta.role == "assistant")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check(f"{label}: stream finish_reason", finishes == ["stop"])
    check(f"{label}: stream usage chunk last", chunks[-1].choices == [] and chunks[-1].usage is not None
          and chunks[-1].usage.completion_tokens == usage.completion_tokens)

    for name, arguments, param in [
        ("missing messages", {"model": "gpt-4o-mini"}, "messages"),
        ("empty messages", {"model": "gpt-4o-mini", "messages": []}, "messages"),
        ("stream_options without stream",
         {"model": "gpt-4o-mini", "messages": MESSAGES, "stream_options": {"include_usage": True}}, "stream_options"),
    ]:
        try:
            # The SDK checks required arguments itself; post the raw body past it.
            client.post("/chat/completions", body=arguments, cast_to=object)
            check(f"{label}: {name} raises BadRequestError", False, "no error")
        except openai.BadRequestError as error:
            check(f"{label}: {name} raises BadRequestError with param", error.status_code == 400
                  and error.body.get("param") == param and error.type == "invalid_request_error",
                  str(error.body))
    try:
        client.chat.completions.create(model="", messages=MESSAGES)
        check(f"{label}: empty model raises", False, "no error")
    except openai.BadRequestError as error:
        check(f"{label}: empty model raises BadRequestError", error.body.get("param") == "model")

    structured_checks(client, label)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, response_format={"type": "json_object"})
        check(f"{label}: json_object without 'json' in the messages raises", False, "no error")
    except openai.BadRequestError as error:
        check(f"{label}: json_object without 'json' in the messages raises BadRequestError",
              error.body.get("param") == "messages" and "json" in error.message, str(error.body))


def together_checks(binary):
    """The openai SDK pointed at the Together surface (PROVIDERS.md §6): the same
    paths, with Together's ids, extra fields, stream usage and errors."""
    label = "together"
    with Mock(binary, "--reply-tokens", "8") as mock:
        client = mock.client()
        reply = client.chat.completions.create(model=TOGETHER_MODEL, messages=MESSAGES, seed=7)
        choice = reply.choices[0]
        check(f"{label}: create returns a ChatCompletion", isinstance(reply, openai.types.chat.ChatCompletion)
              and reply.object == "chat.completion" and reply.model == TOGETHER_MODEL)
        check(f"{label}: a Together id, not chatcmpl-", not reply.id.startswith("chatcmpl-") and reply.id.count("-") == 2,
              reply.id)
        check(f"{label}: prompt [] and choices[].seed", reply.prompt == [] and choice.seed == 7,
              str(reply.model_extra) + str(choice.model_extra))
        check(f"{label}: message and finish_reason", choice.message.role == "assistant"
              and bool(choice.message.content) and choice.finish_reason == "stop")
        usage = reply.usage
        check(f"{label}: usage adds up, no prompt_tokens_details",
              usage.total_tokens == usage.prompt_tokens + usage.completion_tokens and usage.completion_tokens == 8
              and usage.prompt_tokens_details is None, str(usage))
        check(f"{label}: no system_fingerprint", reply.system_fingerprint is None)

        stream = client.chat.completions.create(
            model=TOGETHER_MODEL, messages=MESSAGES, seed=7, stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        check(f"{label}: stream text equals the reply", text == choice.message.content, text)
        last = chunks[-1]
        check(f"{label}: stream usage rides the finish_reason chunk",
              last.choices and last.choices[0].finish_reason == "stop" and last.usage is not None
              and last.usage.completion_tokens == 8 and all(c.usage is None for c in chunks[:-1]),
              str(last))
        check(f"{label}: stream deltas all carry the role",
              all(c.choices[0].delta.role == "assistant" for c in chunks))

        structured_checks(client, label, model=TOGETHER_MODEL)
        schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        native = client.chat.completions.create(
            model=TOGETHER_MODEL, messages=MESSAGES, response_format={"type": "json_schema", "schema": schema})
        try:
            city = json.loads(native.choices[0].message.content)["city"]
        except (ValueError, KeyError, TypeError):
            city = None
        check(f"{label}: Together's own response_format (schema at the top)", isinstance(city, str),
              native.choices[0].message.content)

    with Mock(binary, "--api-key", "tg-right") as mock:
        try:
            mock.client(key="tg-wrong").chat.completions.create(model=TOGETHER_MODEL, messages=MESSAGES)
            check(f"{label}: wrong key raises AuthenticationError", False, "no error")
        except openai.AuthenticationError as error:
            check(f"{label}: wrong key raises AuthenticationError", error.code == "invalid_api_key"
                  and "together" in error.message and "tg-wrong" not in str(error) and "id" in error.response.json(),
                  str(error.body))

    with Mock(binary, "--rps", "2", "--burst", "1") as mock:
        client = mock.client()
        raw = client.chat.completions.with_raw_response.create(model=TOGETHER_MODEL, messages=MESSAGES)
        check(f"{label}: x-ratelimit-* and x-tokenlimit-* headers",
              raw.headers.get("x-ratelimit-limit") == "1" and raw.headers.get("x-ratelimit-remaining") == "0"
              and "x-ratelimit-reset" in raw.headers and "x-ratelimit-limit-requests" not in raw.headers,
              str(dict(raw.headers)))
        try:
            mock.client(max_retries=0).chat.completions.create(model=TOGETHER_MODEL, messages=MESSAGES)
            check(f"{label}: 429 raises RateLimitError", False, "no error")
        except openai.RateLimitError as error:
            headers = error.response.headers
            check(f"{label}: 429 raises RateLimitError (dynamic_request_limited, x-ratelimit-reset)",
                  error.type == "dynamic_request_limited" and int(headers.get("x-ratelimit-reset", "0")) >= 1
                  and "retry-after" not in headers, str(dict(headers)))
        time.sleep(0.6)
        client.chat.completions.create(model=TOGETHER_MODEL, messages=MESSAGES)
        client.chat.completions.create(model=TOGETHER_MODEL, messages=MESSAGES)
        check(f"{label}: the SDK's own backoff gets past a 429", mock.stats()["rate_limited"] >= 2)

    with Mock(binary, "--fault-500", "1") as mock:
        try:
            mock.client(max_retries=0).chat.completions.create(model=TOGETHER_MODEL, messages=MESSAGES)
            check(f"{label}: 500 raises InternalServerError", False, "no error")
        except openai.InternalServerError as error:
            check(f"{label}: 500 raises InternalServerError", error.status_code == 500 and bool(error.message))


BATCH_ENDED = ("completed", "failed", "expired", "cancelled")


def batch_lines(count, model="gpt-4o-mini"):
    """Batch input lines, one question each, plus one the online endpoint refuses."""
    lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": model, "messages": [{"role": "user", "content": f"Question {i}?"}], "seed": i}}
             for i in range(count)]
    lines.append({"custom_id": "empty", "method": "POST", "url": "/v1/chat/completions",
                  "body": {"model": model, "messages": []}})
    return lines


def jsonl(lines):
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def wait_for_batch(client, batch, seconds=15):
    """Polls until the batch ends; returns it and the statuses seen."""
    seen = [batch.status]
    deadline = time.monotonic() + seconds
    while batch.status not in BATCH_ENDED and time.monotonic() < deadline:
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
        if batch.status != seen[-1]:
            seen.append(batch.status)
    return batch, seen


def results_by_id(client, file_id):
    return {line["custom_id"]: line for line in map(json.loads, client.files.content(file_id).text.splitlines())}


def batch_checks(binary):
    """A whole batch cycle through the SDK: files.create, batches.create, retrieve until
    completed, files.content; then list, cancel, expiry and the validation errors."""
    label = "batch"
    lines = batch_lines(5)
    with Mock(binary, "--reply-tokens", "8", "--batch-seconds", "1") as mock:
        client = mock.client()
        data = jsonl(lines)
        uploaded = client.files.create(file=("requests.jsonl", data), purpose="batch")
        check(f"{label}: files.create returns the file", uploaded.id.startswith("file-") and uploaded.purpose == "batch"
              and uploaded.bytes == len(data) and uploaded.filename == "requests.jsonl", str(uploaded))
        check(f"{label}: files.retrieve", client.files.retrieve(uploaded.id).bytes == len(data))
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                      completion_window="24h", metadata={"llmq_job": "job-1"})
        check(f"{label}: batches.create answers validating with the metadata",
              batch.id.startswith("batch_") and batch.status == "validating" and batch.metadata == {"llmq_job": "job-1"}
              and batch.input_file_id == uploaded.id and batch.output_file_id is None, str(batch))
        batch, seen = wait_for_batch(client, batch)
        check(f"{label}: retrieve until completed", batch.status == "completed", str(seen))
        check(f"{label}: went through in_progress", "in_progress" in seen, str(seen))
        check(f"{label}: request_counts", batch.request_counts.total == 6 and batch.request_counts.completed == 5
              and batch.request_counts.failed == 1, str(batch.request_counts))
        check(f"{label}: timestamps of each step", batch.in_progress_at and batch.finalizing_at and batch.completed_at
              and batch.created_at <= batch.in_progress_at <= batch.completed_at, str(batch))
        check(f"{label}: usage adds the answers up", batch.usage is not None and batch.usage.output_tokens == 40
              and batch.usage.total_tokens == batch.usage.input_tokens + 40, str(batch.usage))
        output = results_by_id(client, batch.output_file_id)
        check(f"{label}: output file has each succeeded custom_id once", sorted(output) == [f"q{i}" for i in range(5)],
              str(sorted(output)))
        online = client.chat.completions.create(**lines[2]["body"])
        answer = output["q2"]["response"]
        check(f"{label}: a line is answered as the online endpoint answers it",
              answer["status_code"] == 200 and answer["request_id"].startswith("req_")
              and answer["body"]["choices"][0]["message"]["content"] == online.choices[0].message.content
              and output["q2"]["error"] is None and output["q2"]["id"].startswith("batch_req_"), str(answer))
        errors = results_by_id(client, batch.error_file_id)
        check(f"{label}: error file has the refused line with its 400 body",
              list(errors) == ["empty"] and errors["empty"]["response"]["status_code"] == 400
              and errors["empty"]["response"]["body"]["error"]["param"] == "messages", str(errors))
        output_file = client.files.retrieve(batch.output_file_id)
        check(f"{label}: output file purpose batch_output", output_file.purpose == "batch_output", str(output_file))
        listed = client.batches.list(limit=10)
        check(f"{label}: batches.list has it", [item.id for item in listed.data] == [batch.id], str(listed))
        deleted = client.files.delete(uploaded.id)
        check(f"{label}: files.delete", deleted.deleted and deleted.id == uploaded.id)
        stats = mock.stats()
        check(f"{label}: stats count the batch and the upload",
              stats["batches_created"] == 1 and stats["batches_created_by_provider"]["openai"] == 1
              and stats["files_uploaded"] == 1 and stats["batch_requests"] == {batch.id: 6}, str(stats))

        for name, filename, body, needle in [
            ("a batch file not named .jsonl", "requests.txt", data, "jsonl"),
        ]:
            try:
                client.files.create(file=(filename, body), purpose="batch")
                check(f"{label}: {name} raises BadRequestError", False, "no error")
            except openai.BadRequestError as error:
                check(f"{label}: {name} raises BadRequestError", needle in error.message, str(error.body))
        try:
            client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
            check(f"{label}: a deleted input file raises NotFoundError", False, "no error")
        except openai.NotFoundError as error:
            check(f"{label}: a deleted input file raises NotFoundError", "No such File" in error.message)
        try:
            client.batches.create(input_file_id="file-x", endpoint="/v1/nope", completion_window="24h")
            check(f"{label}: a wrong endpoint raises BadRequestError", False, "no error")
        except openai.BadRequestError as error:
            check(f"{label}: a wrong endpoint raises BadRequestError", error.param == "endpoint", str(error.body))
        mixed = lines[:2] + [dict(lines[2], body=dict(lines[2]["body"], model="gpt-4o")), lines[0]]
        bad = client.files.create(file=("mixed.jsonl", jsonl(mixed)), purpose="batch")
        failed, _ = wait_for_batch(client, client.batches.create(
            input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h"))
        codes = [(error.code, error.line) for error in (failed.errors.data if failed.errors else [])]
        check(f"{label}: a file with two models and a repeated custom_id fails validation",
              failed.status == "failed" and codes == [("mismatched_model", 3), ("duplicate_custom_id", 4)]
              and failed.failed_at is not None, str(failed))

    with Mock(binary, "--batch-seconds", "60") as mock:
        client = mock.client()
        uploaded = client.files.create(file=("requests.jsonl", jsonl(lines)), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        cancelling = client.batches.cancel(batch.id)
        check(f"{label}: cancel answers cancelling", cancelling.status == "cancelling"
              and cancelling.cancelling_at is not None, str(cancelling))
        cancelled = client.batches.retrieve(batch.id)
        check(f"{label}: the next retrieve shows cancelled", cancelled.status == "cancelled"
              and cancelled.cancelled_at is not None and cancelled.output_file_id is None, str(cancelled))
        errors = results_by_id(client, cancelled.error_file_id)
        check(f"{label}: lines not run are batch_cancelled", len(errors) == 6
              and all(line["error"]["code"] == "batch_cancelled" for line in errors.values()), str(errors))

    with Mock(binary, "--batch-expire", "1") as mock:
        client = mock.client()
        uploaded = client.files.create(file=("requests.jsonl", jsonl(batch_lines(9))), purpose="batch")
        batch, _ = wait_for_batch(client, client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"))
        output = results_by_id(client, batch.output_file_id) if batch.output_file_id else {}
        errors = results_by_id(client, batch.error_file_id)
        expired = [key for key, line in errors.items() if line["error"] and line["error"]["code"] == "batch_expired"]
        check(f"{label}: an expiring batch keeps the answers of the lines run before",
              batch.status == "expired" and batch.expired_at is not None and len(expired) == 5
              and len(output) + len(errors) == 10 and not set(output) & set(expired), str(batch))

    with Mock(binary, "--batch-fail-lines", "1") as mock:
        client = mock.client()
        uploaded = client.files.create(file=("requests.jsonl", jsonl(batch_lines(3)[:3])), purpose="batch")
        batch, _ = wait_for_batch(client, client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"))
        errors = results_by_id(client, batch.error_file_id)
        check(f"{label}: --batch-fail-lines answers lines with the 500 body",
              batch.output_file_id is None and len(errors) == 3
              and all(line["response"]["status_code"] == 500 for line in errors.values()), str(errors))


def run(binary):
    with Mock(binary, "--reply-tokens", "8") as mock:
        basic_checks(mock.client(), "mock")

    with Mock(binary, "--api-key", "sk-right", "--model", "gpt-4o-mini") as mock:
        try:
            mock.client(key="sk-wrong").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            check("wrong key raises AuthenticationError", False, "no error")
        except openai.AuthenticationError as error:
            check("wrong key raises AuthenticationError", error.status_code == 401 and error.code == "invalid_api_key"
                  and "sk-wrong" not in str(error))
        try:
            mock.client(key="sk-right").chat.completions.create(model="gpt-9", messages=MESSAGES)
            check("unknown model raises NotFoundError", False, "no error")
        except openai.NotFoundError as error:
            check("unknown model raises NotFoundError", error.code == "model_not_found")
        models = [model.id for model in mock.client(key="sk-right").models.list()]
        check("models.list lists the served models", models == ["gpt-4o-mini"], str(models))

    # 2 requests/s, bucket of 1: the second call at once gets 429 with retry-after-ms
    # of about 500; the SDK waits that long and retries.
    with Mock(binary, "--rps", "2", "--burst", "1") as mock:
        client = mock.client()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        started = time.monotonic()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        waited = time.monotonic() - started
        stats = mock.stats()
        check("SDK retries a 429 after retry-after-ms and succeeds",
              stats["rate_limited"] >= 1 and waited >= 0.3, f"waited {waited:.2f}s, stats {stats}")
        try:
            mock.client(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            check("429 without retries raises RateLimitError", False, "no error")
        except openai.RateLimitError as error:
            headers = error.response.headers
            check("429 without retries raises RateLimitError with the headers",
                  error.code == "rate_limit_exceeded" and error.type == "requests"
                  and "retry-after-ms" in headers and headers.get("x-ratelimit-limit-requests") == "1",
                  str(dict(headers)))

    faults = [
        ("--fault-500", openai.InternalServerError, "500 raises InternalServerError"),
        ("--fault-503", openai.APIStatusError, "503 raises APIStatusError"),
        ("--fault-reset", openai.APIConnectionError, "reset raises APIConnectionError"),
        ("--fault-stall", openai.APITimeoutError, "stall raises APITimeoutError"),
    ]
    for flag, error_type, name in faults:
        with Mock(binary, flag, "1") as mock:
            try:
                mock.client(max_retries=0, timeout=1.0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                check(name, False, "no error")
            except error_type as error:
                check(name, flag != "--fault-503" or error.status_code == 503)
            except Exception as error:  # noqa: BLE001 - report what was raised instead
                check(name, False, f"{type(error).__name__}: {error}")

    with Mock(binary, "--fault-truncate", "1") as mock:
        try:
            mock.client(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            check("truncated JSON raises", False, "no error")
        except Exception as error:  # noqa: BLE001 - the SDK has no dedicated type for this
            check("truncated JSON raises", True)
            print(f"     (the SDK raised {type(error).__name__})")

    with Mock(binary, "--fault-stream-error", "1") as mock:
        try:
            list(mock.client(max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True))
            check("in-stream error raises APIError", False, "no error")
        except openai.APIError as error:
            check("in-stream error raises APIError", "server had an error" in str(error), str(error))

    together_checks(binary)
    started = time.monotonic()
    batch_checks(binary)
    print(f"     (batch checks took {time.monotonic() - started:.1f}s)")


def main():
    binary = llmq_binary(__doc__)
    print(f"openai {openai.__version__}")
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url:
        basic_checks(OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "sk-mock")), "OPENAI_BASE_URL")
    run(binary)
    # The plain closing line test runners print, for whoever reads the log.
    print(f"sdk: {len(PASSED)} passed, {len(FAILURES)} failed")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
