#!/usr/bin/env bash
# Runs the whole job on the bundled example: submit, work, status.
# Without API keys in the environment it starts the fake provider (llmq mock) and
# points every provider at it, so it works offline and costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
LLMQ=${LLMQ:-.build/release/llmq}
[ -x "$LLMQ" ] || swift build -c release --product llmq
export LLMQ_HOME=${LLMQ_HOME:-jobs}

mocked=
if [ -z "${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}${GEMINI_API_KEY:-}${TOGETHER_API_KEY:-}" ]; then
    mocked=1
    log=$(mktemp)
    "$LLMQ" mock --port 0 >"$log" 2>&1 &
    mock=$!
    trap 'kill $mock 2>/dev/null || true; rm -f "$log"' EXIT
    until grep -q '^listening on' "$log"; do sleep 0.1; done
    url=$(head -1 "$log" | sed 's/^listening on //')
    echo "no API keys set: using the fake provider at $url"
    export OPENAI_BASE_URL=$url/v1 OPENAI_API_KEY=mock ANTHROPIC_BASE_URL=$url ANTHROPIC_API_KEY=mock \
        GEMINI_BASE_URL=$url GEMINI_API_KEY=mock TOGETHER_BASE_URL=$url/together/v1 TOGETHER_API_KEY=mock
fi

"$LLMQ" submit examples/simple.jsonl --model gpt-4o-mini
"$LLMQ" work
"$LLMQ" status
echo "results: $LLMQ_HOME/simple/results.jsonl   ledger: $LLMQ_HOME/simple/ledger.jsonl"
head -n 2 "$LLMQ_HOME/simple/results.jsonl"
# The same outcomes in input order, as an OpenAI Batch API output file.
"$LLMQ" results simple --format openai-batch --out "$LLMQ_HOME/simple/openai-batch-output.jsonl"

if [ -n "$mocked" ]; then
    # Batch mode, against the fake provider's batch APIs (real batches take up to 24 h).
    echo
    echo "the same prompts in batch mode (half price):"
    "$LLMQ" submit examples/simple.jsonl --model gpt-4o-mini --job simple-batch --batch
    # --no-cache: the answers above are cached, and a cached request never goes into a batch.
    "$LLMQ" work --job simple-batch --poll-interval 1 --no-cache
    "$LLMQ" status simple-batch
    head -n 1 "$LLMQ_HOME/simple-batch/ledger.jsonl"
fi
