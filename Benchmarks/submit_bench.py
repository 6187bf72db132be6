#!/usr/bin/env python3
"""Times `llmq submit` on generated prompt files: lines/s and peak RSS.

Usage (from the repository root):
    swift build -c release --product llmq
    python3 Benchmarks/submit_bench.py [--lines 100000 1000000] [--runs 3]

Each run submits the file into a fresh queue home, so it measures the full
path: read, parse, validate, canonicalise, hash, insert in one transaction.
Peak RSS is the child's maximum resident set size (getrusage).
"""
import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly "
         "judge boxing matches near an old harbour at dawn").split()


def write_prompts(path, lines, seed=1):
    rng = random.Random(seed)
    with open(path, "w") as out:
        for i in range(lines):
            prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
            if i % 4 == 3:
                line = {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                        "body": {"model": "gpt-4o-mini", "max_tokens": 128,
                                 "messages": [{"role": "system", "content": "Answer briefly."},
                                              {"role": "user", "content": prompt}]}}
            else:
                line = {"custom_id": f"req-{i}", "model": "gpt-4o-mini", "prompt": prompt,
                        "max_tokens": 128, "temperature": round(rng.random(), 2)}
            out.write(json.dumps(line) + "\n")


def run_once(binary, prompts, home):
    shutil.rmtree(home, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.Popen([binary, "submit", prompts, "--job", "bench", "--home", home],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, usage = os.wait4(proc.pid, 0)[1:]
    elapsed = time.perf_counter() - start
    if proc.returncode not in (None, 0):
        sys.exit(f"llmq submit failed: {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024  # KiB -> MiB


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--binary", default=".build/release/llmq")
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `swift build -c release --product llmq` first")
    work = tempfile.mkdtemp(prefix="llmq-submit-bench-")
    try:
        print(f"{'lines':>9} {'file MB':>8} {'median s':>9} {'lines/s':>10} {'peak RSS MB':>12}  runs")
        for lines in args.lines:
            prompts = os.path.join(work, f"prompts-{lines}.jsonl")
            write_prompts(prompts, lines)
            size = os.path.getsize(prompts) / 1e6
            results = [run_once(args.binary, prompts, os.path.join(work, "home")) for _ in range(args.runs)]
            times = [r[0] for r in results]
            rss = max(r[1] for r in results)
            median = statistics.median(times)
            runs = " ".join(f"{t:.2f}" for t in times)
            print(f"{lines:>9} {size:>8.1f} {median:>9.2f} {lines / median:>10,.0f} {rss:>12.1f}  {runs}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
