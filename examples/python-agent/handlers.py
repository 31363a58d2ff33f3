"""The example agent's handlers (the kinds it runs) and how a handler's end becomes a result.

A handler gets a task dict: "dispatch" (the Dispatch), "cancel" (an Event set on a cancel and on a
hand-back), "hand_back" (an Event set when the node wants the attempt back), "resume" (the checkpoint
bytes to resume from, b"" for none) and "checkpoint" (a function: checkpoint(data, progress) saves one).
It returns the output (bytes or str) or raises one of the exceptions here.
"""

import json
import sys
import time

from meshlb.v1 import task_pb2


def emit(event, **fields):
    """One JSON line per event on stdout."""
    fields["event"] = event
    fields["t"] = round(time.time(), 3)
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


class Cancelled(Exception):
    pass


class RateLimited(Exception):
    """What the handler calls said "too many requests": run again after retry_after_ms without
    spending an attempt; the task's rate-limit key pauses mesh-wide as long (RESULT_STATUS_RATE_LIMITED)."""

    def __init__(self, message, retry_after_ms):
        super().__init__(message)
        self.retry_after_ms = max(0, min(int(retry_after_ms), 0xFFFFFFFF))


class Fatal(Exception):
    """A failure a retry cannot fix: the task fails at once (RESULT_STATUS_FATAL)."""


class HandBack(Exception):
    """The node asked for the attempt back (task["hand_back"] is set): it ends HANDED_BACK, no attempt spent,
    and the next attempt resumes from the last checkpoint. Any exception after the ask is taken as this."""


def echo(task):
    """The example kind: the payload comes back as the output.

    A JSON object payload may ask for more: {"sleep_ms": n} waits first (and
    stops early when the attempt is cancelled), {"error": "why"} fails the
    attempt (retried), {"fatal": "why"} fails the task at once, and
    {"rate_limited_ms": n} answers the first attempt RATE_LIMITED with that hint.
    """
    spec = task["dispatch"].spec
    payload = spec.payload
    try:
        ask = json.loads(payload.decode("utf-8")) if payload[:1] == b"{" else {}
    except ValueError:
        ask = {}
    if not isinstance(ask, dict):
        ask = {}
    if ask.get("sleep_ms"):
        if task["cancel"].wait(float(ask["sleep_ms"]) / 1000.0):
            raise HandBack() if task["hand_back"].is_set() else Cancelled()
    if ask.get("fatal"):
        raise Fatal(str(ask["fatal"]))
    if ask.get("rate_limited_ms") and task["dispatch"].attempt == 1:
        raise RateLimited("too many requests", ask["rate_limited_ms"])
    if ask.get("error"):
        raise RuntimeError(str(ask["error"]))
    return payload


def steps(task):
    """The checkpointing kind: {"steps": n, "step_ms": m} runs n steps of m ms, saving a checkpoint
    ({"done": i}) after each. It resumes from the checkpoint its dispatch carries, and when the node
    asks for the attempt back it stops at once (its last checkpoint stands). The output says where it
    started: {"steps": n, "resumed_from": i}."""
    try:
        ask = json.loads(task["dispatch"].spec.payload.decode("utf-8") or "{}")
    except ValueError:
        ask = {}
    n, step_s = int(ask.get("steps", 10)), float(ask.get("step_ms", 100)) / 1000.0
    start = 0
    if task["resume"]:
        start = int(json.loads(task["resume"].decode("utf-8")).get("done", 0))
    for i in range(start, n):
        if task["cancel"].wait(step_s):
            raise HandBack() if task["hand_back"].is_set() else Cancelled()
        task["checkpoint"](json.dumps({"done": i + 1}).encode("utf-8"), (i + 1) / float(n))
    return json.dumps({"steps": n, "resumed_from": start}).encode("utf-8")


# `steps2` is `steps` under another name (a test keeps two groups of agents apart by kind).
HANDLERS = {"echo": echo, "steps": steps, "steps2": steps}


def outcome(task, e):
    """(status, error, retry_after_ms) of an attempt whose handler raised `e`."""
    if task["hand_back"].is_set():
        # Asked back: however it ends short of a value, the attempt is handed back (no attempt spent).
        return task_pb2.RESULT_STATUS_HANDED_BACK, "handed back: %s" % task["why"], 0
    if isinstance(e, Cancelled):
        return task_pb2.RESULT_STATUS_ERROR, "cancelled", 0
    if isinstance(e, Fatal):
        return task_pb2.RESULT_STATUS_FATAL, str(e) or "fatal", 0
    if isinstance(e, RateLimited):
        return task_pb2.RESULT_STATUS_RATE_LIMITED, str(e) or "rate limited", e.retry_after_ms
    # A handler's failure is the attempt's result, retried if attempts remain.
    return task_pb2.RESULT_STATUS_ERROR, str(e) or type(e).__name__, 0
