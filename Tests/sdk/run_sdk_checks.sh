#!/bin/sh
# Drives the official Python SDKs (openai, anthropic, google-genai, together) against
# `llmq mock`, one check script each, and stops at the first that fails.
#
#   Tests/sdk/run_sdk_checks.sh .build/debug/llmq
#
# The SDKs live in a virtualenv at .build/sdk-venv, made on first use; each run
# brings them up to date with pip (quietly). Needs python3 with venv, and PyPI.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 LLMQ_BINARY   (for example .build/debug/llmq)" >&2
    exit 2
fi
case "$1" in
    /*) binary="$1" ;;
    *) binary="$(pwd)/$1" ;;
esac
if [ ! -x "$binary" ]; then
    echo "error: $1 is not an executable llmq; build it first (swift build --product llmq)" >&2
    exit 2
fi

root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.build/sdk-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check openai anthropic google-genai together

for sdk in openai anthropic gemini together; do
    echo "== $sdk"
    "$venv/bin/python" "$root/Tests/sdk/${sdk}_sdk_check.py" --llmq "$binary"
done
