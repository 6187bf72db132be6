#!/usr/bin/env python3
"""Drives the official `openai` Python SDK against `llmq mock`, to show the fake
provider's OpenAI surface is one a real client accepts: replies, streams,
structured output, errors, rate limits and faults, each as the SDK sees it; and
the same SDK against the Together surface (PROVIDERS.md §6), as Together's users
drive it.

It installs nothing. Tests/sdk/run_sdk_checks.sh sets up a virtualenv and runs it
with the anthropic and gemini checks; or set one up yourself:

    python3 -m venv /tmp/openai-venv && /tmp/openai-venv/bin/pip install openai
    swift build --product llmq
    /tmp/openai-venv/bin/python Tests/sdk/openai_sdk_check.py --llmq .build/debug/llmq

It starts its own `llmq mock` servers (one per set of knobs). With OPENAI_BASE_URL
set, it also runs the basic checks against that server (any API key accepted).
Exit status 0 when every check passes.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

import openai
import pydantic
from openai import OpenAI

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llmq", default=os.environ.get("LLMQ_BIN", ".build/debug/llmq"),
                        help="the llmq binary (default: $LLMQ_BIN, else .build/debug/llmq)")
    arguments = parser.parse_args()
    print(f"openai {openai.__version__}")
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url:
        basic_checks(OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "sk-mock")), "OPENAI_BASE_URL")
    run(arguments.llmq)
    # The plain closing line test runners print, for whoever reads the log.
    print(f"sdk: {len(PASSED)} passed, {len(FAILURES)} failed")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
