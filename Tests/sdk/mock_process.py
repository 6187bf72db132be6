"""Shared by the SDK checks: start `llmq mock` as a child process, and count checks.

Each check script imports this from its own folder (Python puts a script's folder
first on `sys.path`), so the scripts stay runnable one by one.
"""

import argparse
import json
import os
import subprocess
import urllib.request


def llmq_binary(doc):
    """The llmq binary a check script runs against (its --llmq option): the
    description is the first paragraph of the script's docstring."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--llmq", default=os.environ.get("LLMQ_BIN", ".build/debug/llmq"),
                        help="the llmq binary (default: $LLMQ_BIN, else .build/debug/llmq)")
    return parser.parse_args().llmq


class Checks:
    """Prints one line per check and remembers the failures."""

    def __init__(self):
        self.passed = []
        self.failures = []

    def __call__(self, name, condition, detail=""):
        """Records one check. `condition` may be a function: an exception it raises
        (an attribute the SDK left None, say) fails the check instead of the run."""
        if callable(condition):
            try:
                condition = condition()
            except Exception as error:  # noqa: BLE001 - a failed check, not a crash
                condition, detail = False, f"{type(error).__name__}: {error}; {detail}"
        print(("ok   " if condition else "FAIL ") + name + (f"  ({detail})" if detail and not condition else ""))
        (self.passed if condition else self.failures).append(name)
        return condition

    def expect_raise(self, name, error_type, call, condition=lambda error: True, detail=lambda error: str(error)):
        """Runs `call`, which must raise `error_type` for which `condition` holds."""
        try:
            call()
        except error_type as error:
            self(name, lambda: condition(error), detail(error))
            return error
        except Exception as error:  # noqa: BLE001 - report what was raised instead
            self(name, False, f"{type(error).__name__}: {error}")
            return None
        self(name, False, "no error")
        return None

    def guard(self, name, body):
        """Runs `body`; an unexpected exception fails the check `name` instead of
        ending the run, so one deviation does not hide the checks after it."""
        try:
            body()
        except Exception as error:  # noqa: BLE001 - a failed check, not a crash
            self(name, False, f"{type(error).__name__}: {error}")

    def summary(self, label):
        # The plain closing line test runners print, for whoever reads the log.
        print(f"{label}: {len(self.passed)} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0


class Mock:
    """One `llmq mock` process on a free port, stopped on exit."""

    def __init__(self, binary, *flags):
        self.process = subprocess.Popen(
            [binary, "mock", "--port", "0", "--threads", "1", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"llmq mock did not start: {line!r}")
        self.url = line[len("listening on "):]

    def stats(self):
        with urllib.request.urlopen(self.url + "/_mock/stats") as response:
            return json.load(response)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.process.terminate()
        self.process.wait(timeout=10)
