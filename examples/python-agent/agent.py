#!/usr/bin/env python3
"""A meshlb agent in Python: the wire contract of docs/agent-protocol.md, by hand.

It keeps one AgentService.Connect stream open to a node cell, says hello
(naming what it still runs after a reconnect), heartbeats at the Welcome's
interval, runs assignments within its slots on threads, acks them as started,
sends one result per attempt, honours cancels (cooperatively: the handler
checks an Event) and drain orders, saves checkpoints and resumes from the one a
dispatch carries, hands attempts back when the node asks (a Cancels with
hand_back, a DrainOrder with migrate), and reconnects with full-jitter backoff,
following the node's leader hint (to an address it was not given too, unless
--leader-hints given) and waiting out a node's retry hint.

It needs Python 3.9+, grpcio and stubs generated from proto/meshlb/v1/agent.proto
and task.proto (see README.md next to this file):

    python3 -m grpc_tools.protoc -I proto --python_out=OUT --grpc_python_out=OUT \
        proto/meshlb/v1/agent.proto proto/meshlb/v1/task.proto
    PYTHONPATH=OUT python3 examples/python-agent/agent.py --address 127.0.0.1:7103 --agent-id py-1

Each event is printed as one JSON line on stdout (welcome, start, cancel,
hand_back, checkpoint_ack, result, drain, disconnected, exit), so a test or a
person can follow it.
Exit codes: 0 after a drain (ordered by the node, or SIGTERM/SIGINT); 1 when
the address is not a node cell (UNIMPLEMENTED); 2 for bad usage.
"""

import argparse
import faulthandler
import os
import queue
import signal
import sys
import threading
import time

try:
    import grpc
    from meshlb.v1 import agent_pb2, agent_pb2_grpc, task_pb2
    from handlers import HANDLERS, emit, outcome
    from handback import HandBacks
    from addresses import Addresses, Backoff, trailer
except ImportError as e:  # pragma: no cover - a setup problem, said plainly
    sys.stderr.write(
        "agent.py: %s\n  install grpcio (Debian: apt-get install python3-grpcio python3-grpc-tools) and generate the\n"
        "  stubs into a directory on PYTHONPATH (examples/python-agent/README.md)\n" % e
    )
    sys.exit(2)

VERSION = "meshlb-agent-py/0.1.0"
# Results sent this long before a stream broke are sent again after the next
# Welcome: the node fences duplicates by attempt, while a result lost with a
# dead stream would cost a whole lease.
RESEND_WINDOW_S = 2.0
# Results per message; small outputs keep a batch far below max_message_bytes.
MAX_BATCH = 256
# The Welcome may be late under load; past this the stream is dropped and retried.
WELCOME_TIMEOUT_S = 30.0


class Agent(HandBacks):
    def __init__(self, addresses, agent_id, slots, kinds, labels, mesh, node_cell, follow_hints=True):
        self.addresses = Addresses(addresses, follow_hints)
        self.agent_id = agent_id
        self.slots = slots
        self.kinds = kinds
        self.labels = labels
        self.mesh = mesh
        self.node_cell = node_cell
        # Re-entrant: a signal handler may start a drain while the main thread holds it.
        self.lock = threading.RLock()
        # (task_id, attempt) -> {"dispatch", "cancel": Event}. Its size never exceeds slots.
        self.running = {}
        self.pending = []  # results not yet written
        self.recent = []  # (sent_at, result) within RESEND_WINDOW_S
        self.draining = False
        self.half_closed = False
        self.stream = None  # the live stream's outbound queue, once welcomed
        self.welcome = None
        self.heartbeat_s = 1.0
        self.changed = threading.Condition(self.lock)
        self.stats = {
            "connects": 0,
            "ok": 0,
            "error": 0,
            "fatal": 0,
            "rate_limited": 0,
            "handed_back": 0,
            "cancelled": 0,
            "heartbeats": 0,
            "checkpoints": 0,
        }

    # ---- the stream ----

    def hello(self):
        with self.lock:
            running = [task_pb2.TaskRef(task_id=t, attempt=a) for (t, a) in self.running]
        return agent_pb2.ConnectRequest(
            hello=agent_pb2.AgentHello(
                agent_id=self.agent_id,
                kinds=self.kinds,
                labels=[task_pb2.Label(key=k, value=v) for k, v in self.labels],
                slots=self.slots,
                version=VERSION,
                mesh=self.mesh,
                node_cell=self.node_cell,
                # What still runs from a stream that broke: the node reserves these slots first.
                running=running,
            )
        )

    def run(self):
        """Connect, serve, reconnect; returns the exit code."""
        backoff = Backoff()
        while True:
            address = self.addresses.current
            outbox = queue.Queue()
            hello = self.hello()
            emit("hello", address=address, running=len(hello.hello.running))
            outbox.put(hello)
            welcomed, err = self.serve(address, outbox)
            if welcomed:
                backoff.reset()
                self.addresses.welcomed()
            with self.lock:
                done = self.draining and not self.running and not self.pending
            if done:
                emit("exit", reason="drained", stats=self.stats)
                return 0
            code = err.code() if err is not None else grpc.StatusCode.OK
            details = err.details() if err is not None else "stream ended"
            emit("disconnected", address=address, code=code.name, details=details, welcomed=welcomed)
            if code == grpc.StatusCode.UNIMPLEMENTED:
                # No AgentService there: not a node cell (or not meshlb). Retrying cannot help.
                sys.stderr.write(
                    "agent.py: %s is not a node cell replica (AgentService.Connect is UNIMPLEMENTED there): %s\n"
                    % (address, details)
                )
                emit("exit", reason="not a node cell", stats=self.stats)
                return 1
            hint = trailer(err, "meshlb-leader-address") if code == grpc.StatusCode.FAILED_PRECONDITION else None
            if self.addresses.redirect(hint):
                # A follower named its leader: go there now (docs/agent-protocol.md, "Which replica").
                time.sleep(0.02)
                continue
            self.addresses.next()
            retry = trailer(err, "meshlb-retry-after-ms") if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
            time.sleep(backoff.next(retry))

    def serve(self, address, outbox):
        """One stream, until it ends. Returns (welcomed, error or None)."""
        ended = threading.Event()

        def requests():
            # Yields until the stream is half-closed (None) or over; never blocks for good.
            while not ended.is_set():
                try:
                    m = outbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                if m is None:
                    return
                yield m

        channel = grpc.insecure_channel(address)
        welcomed = False
        timer = threading.Timer(WELCOME_TIMEOUT_S, lambda: None if welcomed else call.cancel())
        try:
            call = agent_pb2_grpc.AgentServiceStub(channel).Connect(requests())
            timer.start()
            for msg in call:
                kind = msg.WhichOneof("msg")
                if kind == "welcome":
                    welcomed = True
                    timer.cancel()
                    self.on_welcome(msg.welcome, outbox, ended)
                elif kind == "assignments":
                    self.on_assignments(msg.assignments.tasks)
                elif kind == "cancels":
                    c = msg.cancels
                    if c.hand_back:
                        self.hand_back(c.refs, c.reason or "asked back by the node", c.grace_ms)
                    else:
                        self.on_cancels(c.refs)
                elif kind == "checkpoint_acks":
                    for k in msg.checkpoint_acks.acks:
                        emit("checkpoint_ack", task_id=k.task_id, attempt=k.attempt, seq=k.seq, accepted=k.accepted, error=k.error)
                elif kind == "drain":
                    d = msg.drain
                    emit("drain", reason=d.reason, ordered=True, migrate=d.migrate)
                    if d.migrate:
                        with self.lock:
                            refs = [task_pb2.TaskRef(task_id=t, attempt=a) for (t, a) in self.running]
                        self.hand_back(refs, d.reason or "drained with migration", d.grace_ms)
                    self.start_drain()
            return welcomed, None
        except grpc.RpcError as e:
            return welcomed, e
        finally:
            timer.cancel()
            ended.set()
            with self.lock:
                if self.stream is outbox:
                    self.stream = None
                # Anything written shortly before a break goes out again on the next stream (not
                # after our own half-close: the node read everything before it ended its side).
                cutoff = time.monotonic() - RESEND_WINDOW_S
                again = [r for (at, r) in self.recent if at >= cutoff and not self.half_closed]
                self.recent = []
                self.pending = again + self.pending
            channel.close()

    def on_welcome(self, w, outbox, ended):
        emit(
            "welcome",
            node_cell=w.node_cell,
            replica_id=w.replica_id,
            mesh=w.mesh,
            heartbeat_interval_ms=w.heartbeat_interval_ms,
            heartbeat_timeout_ms=w.heartbeat_timeout_ms,
        )
        with self.lock:
            self.welcome = w
            self.heartbeat_s = (w.heartbeat_interval_ms or 1000) / 1000.0
            self.stats["connects"] += 1
            self.stream = outbox
            # Re-announce what still runs (it counts against our slots), then a load.
            refs = [task_pb2.TaskRef(task_id=t, attempt=a) for (t, a) in self.running]
            if refs:
                outbox.put(agent_pb2.ConnectRequest(started=agent_pb2.AgentStarted(refs=refs)))
            outbox.put(self.load_locked())
            self.flush_locked()
        threading.Thread(target=self.heartbeats, args=(outbox, ended), daemon=True).start()

    def heartbeats(self, outbox, ended):
        # The node declares us dead after heartbeat_timeout_ms without any message.
        while not ended.wait(self.heartbeat_s):
            with self.lock:
                if self.stream is not outbox:
                    return
                outbox.put(self.load_locked())
                self.stats["heartbeats"] += 1

    def load_locked(self):
        return agent_pb2.ConnectRequest(
            load=agent_pb2.AgentLoad(
                in_flight=len(self.running), cpu=cpu_load(), memory=0.0, gpu=0.0, draining=self.draining
            )
        )

    # ---- tasks ----

    def on_assignments(self, tasks):
        launch = []
        with self.lock:
            for d in tasks:
                key = (d.task_id, d.attempt)
                if key in self.running:
                    continue  # the same attempt again: it already runs
                if self.draining:
                    self.report_locked(d, task_pb2.RESULT_STATUS_ERROR, b"", "agent draining")
                    continue
                if len(self.running) >= self.slots:
                    self.report_locked(d, task_pb2.RESULT_STATUS_ERROR, b"", "over slots")
                    continue
                handler = HANDLERS.get(d.spec.kind)
                if handler is None:
                    self.report_locked(d, task_pb2.RESULT_STATUS_ERROR, b"", "no handler for kind %r" % d.spec.kind)
                    continue
                task = {
                    "dispatch": d,
                    "cancel": threading.Event(),
                    "hand_back": threading.Event(),
                    "why": "",
                    "t0": time.monotonic(),
                    "seq": 0,
                    # The checkpoint to resume from (bytes), if an earlier attempt saved one.
                    "resume": d.checkpoint.data if d.HasField("checkpoint") else b"",
                }
                task["checkpoint"] = lambda data, progress=0.0, task=task: self.save(task, data, progress)
                self.running[key] = task
                launch.append((handler, task))
            # The acks go out before any of these attempts can report: a `started` the node
            # reads after the result would hold a slot until the next load trims it.
            refs = [task_pb2.TaskRef(task_id=t["dispatch"].task_id, attempt=t["dispatch"].attempt) for _, t in launch]
            if refs and self.stream is not None:
                self.stream.put(agent_pb2.ConnectRequest(started=agent_pb2.AgentStarted(refs=refs)))
        for handler, task in launch:
            d = task["dispatch"]
            emit("start", task_id=d.task_id, attempt=d.attempt, kind=d.spec.kind, lease_ms=d.lease_ms)
            threading.Thread(target=self.execute, args=(handler, task), daemon=True).start()

    def execute(self, handler, task):
        d = task["dispatch"]
        output, err, status, retry_after_ms = b"", "", task_pb2.RESULT_STATUS_OK, 0
        try:
            out = handler(task)
            output = out if isinstance(out, bytes) else str(out).encode("utf-8")
        except Exception as e:
            status, err, retry_after_ms = outcome(task, e)
        name = task_pb2.ResultStatus.Name(status).replace("RESULT_STATUS_", "").lower()
        with self.lock:
            if self.running.get((d.task_id, d.attempt)) is not task:
                return  # handed back already: its grace ran out (hand_back)
            self.stats[name] += 1
            if task["cancel"].is_set() and not task["hand_back"].is_set():
                self.stats["cancelled"] += 1
            del self.running[(d.task_id, d.attempt)]
            micros = int((time.monotonic() - task["t0"]) * 1e6)
            self.report_locked(d, status, output, err[:4096], micros, retry_after_ms)
            self.changed.notify_all()
        emit("result", task_id=d.task_id, attempt=d.attempt, status=name, error=err)

    def report_locked(self, d, status, output, error, micros=0, retry_after_ms=0):
        # One result per attempt; agent_id and node_cell are set by the node anyway.
        self.pending.append(
            task_pb2.TaskResult(
                task_id=d.task_id,
                attempt=d.attempt,
                status=status,
                output=output,
                error=error,
                agent_id=self.agent_id,
                node_cell=self.welcome.node_cell if self.welcome else "",
                run_micros=min(micros, 0xFFFFFFFF),
                retry_after_ms=retry_after_ms,
            )
        )
        self.flush_locked()

    def flush_locked(self):
        if self.stream is None:
            return  # kept until the next Welcome
        now = time.monotonic()
        self.recent = [(at, r) for (at, r) in self.recent if now - at < RESEND_WINDOW_S]
        while self.pending:
            batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            self.stream.put(agent_pb2.ConnectRequest(results=agent_pb2.AgentResults(results=batch)))
            self.recent.extend((now, r) for r in batch)
        self.changed.notify_all()

    def on_cancels(self, refs):
        with self.lock:
            for ref in refs:
                for (t, a), task in self.running.items():
                    if t == ref.task_id and (ref.attempt == 0 or a == ref.attempt):
                        task["cancel"].set()
                        emit("cancel", task_id=t, attempt=a)

    # ---- drain ----

    def start_drain(self):
        """Take nothing new, finish what runs, send every result, half-close."""
        with self.lock:
            if self.draining:
                return
            self.draining = True
            if self.stream is not None:
                self.stream.put(self.load_locked())
        threading.Thread(target=self.finish_drain, daemon=True).start()

    def finish_drain(self):
        with self.lock:
            while self.running or self.pending or self.stream is None:
                self.changed.wait(0.2)
            self.stream.put(self.load_locked())
            self.half_closed = True
            self.stream.put(None)  # half-close: the node ends its side, serve() returns


def cpu_load():
    try:
        return min(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 0.0


def main(argv):
    p = argparse.ArgumentParser(description="A meshlb agent in Python that runs the 'echo' kind.")
    p.add_argument("--address", required=True, help="node cell replica host:port; several comma-separated (required)")
    p.add_argument("--agent-id", required=True, help="unique within the node cell (required)")
    p.add_argument("--slots", type=int, default=4, help="max concurrent tasks (default: 4)")
    p.add_argument("--kinds", default="echo", help="kinds to declare, comma-separated (default: echo)")
    p.add_argument("--labels", default="", help="k=v,... (default: none)")
    p.add_argument("--mesh", default="", help="the mesh (topology name) expected (default: any)")
    p.add_argument("--node-cell", default="", help="the node cell expected, e.g. /eu/west-1a/n1 (default: any)")
    p.add_argument(
        "--leader-hints",
        choices=["follow", "given"],
        default="follow",
        help="follow a follower's leader hint to an address not given, or only to given ones (default: follow)",
    )
    a = p.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid> prints every thread's stack
    if a.slots < 1:
        p.error("--slots must be >= 1")
    labels = [tuple(kv.split("=", 1)) for kv in a.labels.split(",") if "=" in kv]
    kinds = [k for k in a.kinds.split(",") if k]
    addresses = [x for x in a.address.split(",") if x]
    follow = a.leader_hints == "follow"
    agent = Agent(addresses, a.agent_id, a.slots, kinds, labels, a.mesh, a.node_cell, follow)

    def on_signal(signum, _frame):
        # Not here: the main thread may be inside emit() or hold the lock. A thread does it.
        def drain():
            emit("drain", reason=signal.Signals(signum).name, ordered=False)
            agent.start_drain()

        threading.Thread(target=drain, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
