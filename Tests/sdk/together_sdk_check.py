#!/usr/bin/env python3
"""Drives the official `together` Python SDK against `llmq mock`, to show the fake
provider's Together batch surface (PROVIDERS.md §6) is one a real client accepts:
the three-step upload (files.upload with purpose="batch-api"), batches.create,
retrieve until done, the output and error files, list, cancel and expiry, each as
the SDK sees it.

The SDK (2.x and later) adds /v1/… itself, so its base URL is the mock's
`/together` prefix, where every path is Together's (under plain /v1 a batch list
would be OpenAI's).

It installs nothing; Tests/sdk/run_sdk_checks.sh sets up a virtualenv and runs it:

    .build/sdk-venv/bin/python Tests/sdk/together_sdk_check.py --llmq .build/debug/llmq

It starts its own `llmq mock` servers (one per set of knobs). Exit status 0 when
every check passes.
"""

import json
import os
import sys
import tempfile
import time

import together
from together import Together

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts, in the repository
from mock_process import Checks, Mock, llmq_binary  # noqa: E402 - after the line above

check = Checks()
MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
MESSAGES = [{"role": "user", "content": "2+2?"}]


def client_for(mock, key="tg-mock", **options):
    return Together(base_url=mock.url + "/together", api_key=key, **options)


def write_requests(folder, count):
    """A batch input file of `count` requests and one the online endpoint refuses."""
    lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": f"Question {i}?"}]}}
             for i in range(count)]
    lines.append({"custom_id": "hot", "method": "POST", "url": "/v1/chat/completions",
                  "body": {"model": MODEL, "temperature": 9, "messages": MESSAGES}})
    path = os.path.join(folder, f"requests-{count}.jsonl")
    with open(path, "w") as file:
        file.write("".join(json.dumps(line) + "\n" for line in lines))
    return path, lines


def wait_for_job(client, job, seconds=15):
    """Polls until the job has ended; returns it and the statuses seen."""
    seen = [job.status]
    deadline = time.monotonic() + seconds
    while job.status not in ("COMPLETED", "FAILED", "EXPIRED", "CANCELLED") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.batches.retrieve(job.id)
        if job.status != seen[-1]:
            seen.append(job.status)
    return job, seen


def lines_of(client, file_id):
    return [json.loads(line) for line in client.files.content(file_id).read().decode().splitlines() if line]


def batches(binary, folder):
    """files.upload, batches.create, retrieve until COMPLETED, the files, list, errors."""
    with Mock(binary, "--reply-tokens", "8", "--batch-seconds", "1") as mock:
        client = client_for(mock)
        online = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        check("chat under /together/v1 answers in Together's shape",
              online.model == MODEL and bool(online.choices[0].message.content) and online.usage.total_tokens > 0,
              str(online))
        path, lines = write_requests(folder, 4)
        uploaded = client.files.upload(file=path, purpose="batch-api")
        check("files.upload: 302, PUT, preprocess give the file",
              uploaded.id.startswith("file-") and uploaded.purpose == "batch-api"
              and uploaded.bytes == os.path.getsize(path) and uploaded.file_type == "jsonl"
              and uploaded.filename == os.path.basename(path), str(uploaded))
        check("files.retrieve has it", client.files.retrieve(uploaded.id).id == uploaded.id)
        created = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions")
        job = created.job
        check("batches.create answers a wrapped job, VALIDATING",
              job is not None and job.status == "VALIDATING" and job.input_file_id == uploaded.id
              and job.progress == 0 and job.output_file_id is None and created.warning is None, str(created))
        check("job_deadline is a day after created_at",
              (job.job_deadline - job.created_at).total_seconds() == 86400, str(job))
        job, seen = wait_for_job(client, job)
        check("retrieve until COMPLETED", job.status == "COMPLETED" and seen[-1] == "COMPLETED"
              and job.progress == 100 and job.completed_at is not None and job.x_model_id == MODEL, str(job))
        output = lines_of(client, job.output_file_id)
        check("the output file has every answered custom_id once",
              sorted(line["custom_id"] for line in output) == [f"q{i}" for i in range(4)], str(output))
        answer = next(line for line in output if line["custom_id"] == "q1")
        again = client.chat.completions.create(**lines[1]["body"])
        check("an output line is the online answer", answer["id"].startswith("br_")
              and answer["response"]["status_code"] == 200
              and answer["response"]["body"]["choices"][0]["message"]["content"] == again.choices[0].message.content
              and "error" not in answer, str(answer))
        errors = lines_of(client, job.error_file_id)
        check("the error file has the refused request with the online message",
              [line["custom_id"] for line in errors] == ["hot"] and errors[0]["error"]["code"] == "batch_client_error"
              and "temperature" in errors[0]["error"]["message"] and "response" not in errors[0], str(errors))
        listed = client.batches.list()
        check("batches.list is a bare list with the job", [item.id for item in listed] == [job.id], str(listed))
        check.expect_raise(
            "cancelling a completed job raises ConflictError", together.ConflictError,
            lambda: client.batches.cancel(job.id),
            lambda error: "terminal state: COMPLETED" in str(error))
        check.expect_raise(
            "an unknown job raises NotFoundError", together.NotFoundError,
            lambda: client.batches.retrieve("00000000-0000-4000-8000-000000000000"),
            lambda error: "Job not found" in str(error))
        stats = mock.stats()
        check("stats count the upload and the job", stats["batches_created_by_provider"]["together"] == 1
              and stats["files_uploaded"] == 1, str(stats))

    with Mock(binary, "--batch-seconds", "60") as mock:
        client = client_for(mock)
        path, _ = write_requests(folder, 2)
        job = client.batches.create(
            input_file_id=client.files.upload(file=path, purpose="batch-api").id, endpoint="/v1/chat/completions").job
        canceling = client.batches.cancel(job.id)
        check("cancel answers the bare job, CANCELING", canceling.id == job.id and canceling.status == "CANCELING",
              str(canceling))
        ended, _ = wait_for_job(client, canceling)
        check("the next retrieve shows it CANCELLED, with no files", ended.status == "CANCELLED"
              and ended.output_file_id is None and ended.error_file_id is None, str(ended))

    with Mock(binary, "--batch-expire", "1") as mock:
        client = client_for(mock)
        path, _ = write_requests(folder, 5)
        job = client.batches.create(
            input_file_id=client.files.upload(file=path, purpose="batch-api").id, endpoint="/v1/chat/completions").job
        ended, _ = wait_for_job(client, job)
        ran = lines_of(client, ended.output_file_id) if ended.output_file_id else []
        ran += lines_of(client, ended.error_file_id) if ended.error_file_id else []
        check("an expiring job keeps what ran (half) and leaves the rest out",
              ended.status == "EXPIRED" and len(ran) == 3 and ended.progress == 50, str(ended))

    with Mock(binary, "--api-key", "tg-right") as mock:
        check.expect_raise(
            "a wrong key raises AuthenticationError, without the key", together.AuthenticationError,
            lambda: client_for(mock, key="tg-wrong", max_retries=0).batches.list(),
            lambda error: "tg-wrong" not in str(error) and "Invalid API key" in str(error))
        client = client_for(mock, key="tg-right")
        job = client.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions").job
        failed, _ = wait_for_job(client, job)
        check("a job on a missing file is FAILED with its error", failed.status == "FAILED"
              and "file-missing" in (failed.error or "") and failed.output_file_id is None, str(failed))


def run(binary):
    with tempfile.TemporaryDirectory() as folder:
        started = time.monotonic()
        check.guard("together batches", lambda: batches(binary, folder))
        print(f"     (batch checks took {time.monotonic() - started:.1f}s)")


def main():
    binary = llmq_binary(__doc__)
    print(f"together {together.__version__}")
    run(binary)
    sys.exit(check.summary("together sdk"))


if __name__ == "__main__":
    main()
