#!/usr/bin/env bash
# Transport benchmark: CurlTransport (TransportBench) beside h2load on the same nginx,
# over HTTP/1.1, HTTP/1.1+TLS and HTTP/2+TLS on loopback, POSTs answered with a fixed
# JSON reply. Prints a markdown table of req/s and client CPU.
#
# Usage (from the repository root): bash Benchmarks/transport_bench.sh [REQUESTS] [CONCURRENCY...]
#   defaults: 20000 requests, concurrency 32 and 256. Each row is run RUNS times
#   (default 3) and every column shows its median: a 20,000-request run lasts under
#   a second, so one run is noisy on a shared 2-core machine.
# Needs nginx, openssl and h2load (Debian: apt-get install -y nginx openssl nghttp2-client).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

REQUESTS=${1:-20000}
RUNS=${RUNS:-3}
shift || true
CONCURRENCIES=("$@")
[ ${#CONCURRENCIES[@]} -gt 0 ] || CONCURRENCIES=(32 256)

for tool in nginx openssl h2load; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
        echo "error: $tool is missing (apt-get install -y nginx openssl nghttp2-client)" >&2
        exit 1
    }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "building TransportBench (release)..." >&2
swift build -c release --scratch-path .build-transport --product TransportBench >&2
BENCH=.build-transport/release/TransportBench

WORK=$(mktemp -d)
NGINX_PID=
cleanup() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

read -r PORT_H1 PORT_TLS PORT_H2 < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

REPLY='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22}}'
cat >"$WORK/nginx.conf" <<CONF
master_process off;
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/body;
    # nginx closes a keep-alive connection after 1,000 requests by default.
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    http2_max_concurrent_streams 512;
    default_type application/json;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    server { listen 127.0.0.1:$PORT_H1; location / { return 200 '$REPLY'; } }
    server { listen 127.0.0.1:$PORT_TLS ssl; location / { return 200 '$REPLY'; } }
    server { listen 127.0.0.1:$PORT_H2 ssl http2; location / { return 200 '$REPLY'; } }
}
CONF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
NGINX_PID=$!
for _ in $(seq 50); do
    curl -sk -o /dev/null "https://127.0.0.1:$PORT_H2/" && break
    sleep 0.1
done

python3 -c 'import json; print(json.dumps({"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"*200}]}))' \
    >"$WORK/body.json"

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ROWS=()
run_pair() { # name url bench-flags h2load-mode(h1|h2)
    local name=$1 url=$2 bench_flags=$3 h2_mode=$4
    local c run line h2flags
    for c in "${CONCURRENCIES[@]}"; do
        local rates=() cpus=() pers=() h2rates=() h2cpus=()
        if [ "$h2_mode" = h1 ]; then h2flags=(--h1 -c "$c" -m 1); else h2flags=(-c 1 -m "$c"); fi
        for run in $(seq "$RUNS"); do
            # shellcheck disable=SC2086
            line=$("$BENCH" "$url" --requests "$REQUESTS" --concurrency "$c" --label "$name" $bench_flags)
            echo "run $run: $line" >&2
            rates+=("$(sed -E 's/.*: ([0-9.]+) req\/s.*/\1/' <<<"$line")")
            cpus+=("$(sed -E 's/.*client CPU ([0-9.]+) s.*/\1/' <<<"$line")")
            pers+=("$(sed -E 's/.*, ([0-9.]+) µs CPU\/req.*/\1/' <<<"$line")")
            local TIMEFORMAT='%U %S'
            { time h2load -n "$REQUESTS" "${h2flags[@]}" -d "$WORK/body.json" \
                -H 'content-type: application/json' "$url" >"$WORK/h2load.out" 2>&1; } 2>"$WORK/time.out"
            echo "run $run: h2load $(grep -E '^(finished|requests:)' "$WORK/h2load.out" | tr '\n' ' ')" >&2
            h2rates+=("$(sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p' "$WORK/h2load.out")")
            h2cpus+=("$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/time.out")")
        done
        local h2rate
        h2rate=$(median "${h2rates[@]}")
        ROWS+=("| $name | $c | $(median "${rates[@]}") | $(median "${cpus[@]}") | $(median "${pers[@]}") | ${h2rate%.*} | $(median "${h2cpus[@]}") |")
    done
}

run_pair "HTTP/1.1" "http://127.0.0.1:$PORT_H1/v1/chat/completions" "" h1
run_pair "HTTP/1.1+TLS" "https://localhost:$PORT_TLS/v1/chat/completions" "--cafile $WORK/cert.pem" h1
run_pair "HTTP/2+TLS" "https://localhost:$PORT_H2/v1/chat/completions" "--http2 --cafile $WORK/cert.pem" h2

echo
echo "$REQUESTS POSTs per run, median of $RUNS runs, nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), 1 worker, loopback, $(nproc) cores"
echo
echo "| protocol | concurrency | llmq req/s | llmq CPU s | llmq CPU µs/req | h2load req/s | h2load CPU s |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
