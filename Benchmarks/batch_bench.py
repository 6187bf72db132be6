#!/usr/bin/env python3
"""`llmq submit --batch` + `llmq work` through the providers' batch APIs of `llmq mock`.

Usage (from the repository root):
    swift build -c release --product llmq
    python3 Benchmarks/batch_bench.py [--requests 100000] [--prompt-bytes 1000]
                                      [--providers openai,anthropic,gemini] [--runs 1]

For each provider it submits N batch-mode requests (prompts of about --prompt-bytes
bytes) into a fresh home, starts `llmq mock --batch-seconds 0` (a batch has ended at
its first poll) and runs `llmq work --poll-interval 0.2 --no-cache --quiet` until the
job is done. It reports the wall time of the work step, its CPU seconds, its peak
RSS, the number of batches and the bytes of batch input files written, and checks
that every request has exactly one result line.

Peak RSS is the figure to watch: the planner, the upload and the collection must
not hold a whole batch (up to 200 MB at OpenAI, 256 MB at Anthropic) in memory.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from work_bench import start_mock  # noqa: E402 - after the line above

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}


def run_case(binary, work_dir, provider, requests, prompt_bytes):
    home = os.path.join(work_dir, "home")
    shutil.rmtree(home, ignore_errors=True)
    prompts = os.path.join(work_dir, "prompts.jsonl")
    filler = ("lorem ipsum dolor sit amet " * (prompt_bytes // 27 + 1))[:prompt_bytes]
    with open(prompts, "w") as out:
        for i in range(requests):
            out.write(json.dumps({"custom_id": f"r{i}", "model": MODELS[provider],
                                  "prompt": f"Prompt {i}: {filler}", "max_tokens": 16}) + "\n")
    subprocess.run([binary, "submit", prompts, "--job", "bench", "--batch", "--home", home], check=True,
                   stdout=subprocess.DEVNULL)
    mock, url = start_mock(binary, "--batch-seconds", "0")
    env = dict(os.environ, OPENAI_BASE_URL=url + "/v1", OPENAI_API_KEY="bench", ANTHROPIC_BASE_URL=url,
               ANTHROPIC_API_KEY="bench", GEMINI_BASE_URL=url, GEMINI_API_KEY="bench")
    try:
        start = time.perf_counter()
        proc = subprocess.Popen([binary, "work", "--home", home, "--no-cache", "--quiet", "--poll-interval", "0.2"],
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    finally:
        mock.terminate()
        mock.wait()
    if status != 0:
        sys.exit(f"llmq work exited with {status}")
    ids = set()
    with open(os.path.join(home, "bench", "results.jsonl")) as results:
        for line in results:
            ids.add(json.loads(line)["custom_id"])
    if len(ids) != requests:
        sys.exit(f"expected {requests} results, found {len(ids)}")
    folder = os.path.join(home, "bench", "batches")
    inputs = [name for name in os.listdir(folder) if not name.endswith(".results.jsonl")]
    input_bytes = sum(os.path.getsize(os.path.join(folder, name)) for name in inputs)
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, len(inputs), input_bytes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100000)
    parser.add_argument("--prompt-bytes", type=int, default=1000)
    parser.add_argument("--providers", default="openai,anthropic,gemini")
    parser.add_argument("--binary", default=".build/release/llmq")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `swift build -c release --product llmq` first")
    work_dir = tempfile.mkdtemp(prefix="llmq-batch-bench-")
    try:
        print(f"{'provider':>10} {'requests':>9} {'batches':>7} {'input MB':>9} {'wall s':>7} {'CPU s':>6}"
              f" {'RSS MB':>7}")
        for provider in args.providers.split(","):
            runs = sorted(run_case(args.binary, work_dir, provider, args.requests, args.prompt_bytes)
                          for _ in range(args.runs))
            wall, cpu, rss, batches, input_bytes = runs[len(runs) // 2]
            print(f"{provider:>10} {args.requests:>9,} {batches:>7} {input_bytes / 1e6:>9.1f} {wall:>7.1f}"
                  f" {cpu:>6.1f} {rss:>7.1f}", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
