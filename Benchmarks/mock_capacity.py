#!/usr/bin/env python3
"""Measures the fake provider's capacity: requests/s of `llmq mock` at zero latency,
driven by h2load over HTTP/1.1 keep-alive, with the server's own CPU per request.

Usage (from the repository root):
    apt-get install -y nghttp2-client        # h2load; nginx too for the reference row
    swift build -c release --product llmq
    python3 Benchmarks/mock_capacity.py [--llmq .build/release/llmq] [--requests 200000]
        [--connections 64] [--server-threads 1 2] [--client-threads 1 2] [--runs 3] [--nginx]

Each row is the median of the runs. Server CPU comes from /proc/PID/stat (user +
system time of `llmq mock` over the run), so "µs/req" is what one answer costs the
server whatever the load generator, which shares the machine, gets. `--nginx` adds
the same h2load run against nginx answering a fixed JSON reply of similar size: the
ceiling of this machine and load generator.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BODY = ('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}],'
        '"max_tokens":16}')
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def h2load(url, body_file, requests, connections, threads, extra=()):
    command = ["h2load", "--h1", "-n", str(requests), "-c", str(connections), "-t", str(threads),
               "-H", "Authorization: Bearer sk-bench", "-H", "Content-Type: application/json",
               "-d", body_file, *extra, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", output).group(1))
    succeeded = int(re.search(r"(\d+) succeeded", output).group(1))
    if succeeded != requests:
        sys.exit(f"h2load: only {succeeded} of {requests} requests succeeded:\n{output}")
    shown = [("'" + part + "'" if " " in part else part) for part in command[:-1]]
    return rate, " ".join(shown + ["http://127.0.0.1:PORT/v1/chat/completions"])


def start_mock(binary, threads):
    process = subprocess.Popen([binary, "mock", "--port", "0", "--threads", str(threads)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        sys.exit(f"llmq mock did not start: {line!r}")
    return process, line[len("listening on "):]


def start_nginx(work, reply):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as out:
        out.write(f"""master_process off; daemon off; worker_processes 1; pid {work}/nginx.pid;
error_log {work}/error.log warn; events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {work}/body; keepalive_requests 100000000;
  server {{ listen 127.0.0.1:18089; location / {{ default_type application/json; return 200 '{reply}'; }} }} }}
""")
    process = subprocess.Popen([nginx, "-c", conf, "-p", work], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return process


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llmq", default=".build/release/llmq")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--client-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nginx", action="store_true", help="add nginx with a fixed reply as the reference")
    arguments = parser.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load is missing: apt-get install -y nghttp2-client")

    work = tempfile.mkdtemp(prefix="mock-capacity-")
    body_file = os.path.join(work, "body.json")
    with open(body_file, "w") as out:
        out.write(BODY)
    path = "/v1/chat/completions"
    rows = []
    command_shown = None
    for server_threads in arguments.server_threads:
        process, url = start_mock(arguments.llmq, server_threads)
        try:
            # Warm up: connections, allocator, page faults.
            h2load(url + path, body_file, 20_000, arguments.connections, 1)
            for client_threads in arguments.client_threads:
                rates, costs = [], []
                for _ in range(arguments.runs):
                    before = cpu_seconds(process.pid)
                    rate, command = h2load(url + path, body_file, arguments.requests, arguments.connections,
                                           client_threads)
                    costs.append((cpu_seconds(process.pid) - before) / arguments.requests * 1e6)
                    rates.append(rate)
                    command_shown = command_shown or command
                rows.append((f"llmq mock --threads {server_threads}", client_threads, statistics.median(rates),
                             statistics.median(costs), rates))
        finally:
            process.terminate()
            process.wait()
    if arguments.nginx:
        sample = ('{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",'
                  '"choices":[{"index":0,"message":{"role":"assistant","content":"alpha bravo charlie delta echo '
                  'foxtrot golf hotel india juliet kilo lima mike november oscar papa","refusal":null,'
                  '"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":10,'
                  '"completion_tokens":16,"total_tokens":26}}')
        nginx = start_nginx(work, sample)
        try:
            for client_threads in arguments.client_threads:
                rates = [h2load("http://127.0.0.1:18089" + path, body_file, arguments.requests,
                                arguments.connections, client_threads)[0] for _ in range(arguments.runs)]
                rows.append(("nginx, fixed reply, 1 worker", client_threads, statistics.median(rates), None, rates))
        finally:
            nginx.terminate()
            nginx.wait()
    shutil.rmtree(work, ignore_errors=True)

    print(f"{arguments.requests:,} POSTs per run, {arguments.connections} connections, HTTP/1.1 keep-alive, "
          f"median of {arguments.runs} runs")
    print(f"command: {command_shown}")
    print()
    print("| server | h2load threads | req/s | server CPU µs/req | runs (req/s) |")
    print("|---|---:|---:|---:|---|")
    for server, client_threads, rate, cost, rates in rows:
        cost_text = f"{cost:.1f}" if cost is not None else "—"
        print(f"| {server} | {client_threads} | {rate:,.0f} | {cost_text} | "
              + " ".join(f"{r:,.0f}" for r in rates) + " |")


if __name__ == "__main__":
    main()
