#!/usr/bin/env python3
"""End-to-end `llmq submit` + `llmq work` against `llmq mock` (release build).

Usage (from the repository root):
    swift build -c release --product llmq
    python3 Benchmarks/work_bench.py [--requests 20000] [--runs 3] [--cases 0:32,200:1024]

For each case it starts `llmq mock` with the given latency, submits N requests into
a fresh home, runs `llmq work --concurrency C --no-cache`, and reports requests/s of
the work step, its CPU seconds per 1,000 requests, its peak RSS, and for latency
cases the ideal rate (concurrency / latency) and the share of it achieved, both end
to end (process start to exit: ramp-up and tail included) and sustained (between
the 10th and the 90th percent of answers, read from the fake provider's counters
every 20 ms). With
--runs N each case runs N times and the run with the median rate is reported.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CASES = [(0, 32), (0, 256), (200, 32), (200, 256), (200, 1024)]


def start_mock(binary, *flags):
    """Starts `llmq mock --port 0 FLAGS…`; returns the process and its base URL."""
    process = subprocess.Popen([binary, "mock", "--port", "0", *flags], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        sys.exit(f"llmq mock said: {line}")
    return process, line[len("listening on "):]


def run_case(binary, work_dir, requests, latency_ms, concurrency):
    home = os.path.join(work_dir, "home")
    shutil.rmtree(home, ignore_errors=True)
    prompts = os.path.join(work_dir, "prompts.jsonl")
    subprocess.run([binary, "submit", prompts, "--job", "bench", "--home", home], check=True,
                   stdout=subprocess.DEVNULL)
    mock, url = start_mock(binary, *(["--latency", f"{latency_ms}ms"] if latency_ms else []))
    env = dict(os.environ, OPENAI_BASE_URL=url + "/v1", OPENAI_API_KEY="bench")
    try:
        start = time.perf_counter()
        proc = subprocess.Popen([binary, "work", "--home", home, "--concurrency", str(concurrency), "--no-cache",
                                 "--quiet"], env=env)
        samples = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                with urllib.request.urlopen(url + "/_mock/stats") as response:
                    answered = json.load(response)["total_requests"]
                samples.append((time.perf_counter(), answered))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
    finally:
        mock.terminate()
        mock.wait()
    if status != 0:
        sys.exit(f"llmq work exited with {status}")
    with open(os.path.join(home, "bench", "results.jsonl")) as results:
        lines = sum(1 for _ in results)
    if lines != requests:
        sys.exit(f"expected {requests} results, found {lines}")
    cpu = usage.ru_utime + usage.ru_stime
    low = next(sample for sample in samples if sample[1] >= requests * 0.1)
    high = next(sample for sample in samples if sample[1] >= requests * 0.9)
    sustained = (high[1] - low[1]) / (high[0] - low[0]) if high[0] > low[0] else float("nan")
    return requests / elapsed, cpu / requests * 1000, usage.ru_maxrss / 1024, sustained


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--binary", default=".build/release/llmq")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", help="latency_ms:concurrency pairs, comma-separated (default: all five)")
    args = parser.parse_args()
    cases = CASES
    if args.cases:
        cases = [tuple(int(part) for part in case.split(":")) for case in args.cases.split(",")]
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `swift build -c release --product llmq` first")
    work_dir = tempfile.mkdtemp(prefix="llmq-work-bench-")
    try:
        with open(os.path.join(work_dir, "prompts.jsonl"), "w") as out:
            for i in range(args.requests):
                out.write(json.dumps({"custom_id": f"r{i}", "model": "gpt-4o-mini",
                                      "prompt": f"Benchmark prompt number {i}.", "max_tokens": 16}) + "\n")
        print(f"{'latency':>8} {'conc':>5} {'req/s':>8} {'CPU s/1k':>9} {'RSS MB':>7} {'ideal':>7} {'of ideal':>8}"
              f" {'sustained':>9} {'of ideal':>8}")
        for latency_ms, concurrency in cases:
            runs = sorted(run_case(args.binary, work_dir, args.requests, latency_ms, concurrency)
                          for _ in range(args.runs))
            rate, cpu, rss, sustained = runs[len(runs) // 2]
            ideal = concurrency / (latency_ms / 1000) if latency_ms else None
            share = f"{rate / ideal:.0%}" if ideal else "-"
            sustained_share = f"{sustained / ideal:.0%}" if ideal else "-"
            ideal_text = f"{ideal:,.0f}" if ideal else "-"
            print(f"{latency_ms:>6}ms {concurrency:>5} {rate:>8,.0f} {cpu:>9.3f} {rss:>7.1f} {ideal_text:>7} {share:>8}"
                  f" {sustained:>9,.0f} {sustained_share:>8}", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
