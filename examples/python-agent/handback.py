"""Checkpoints and hand-backs for the example agent (docs/agent-protocol.md, section 9): a mixin of Agent,
which holds the lock, the running attempts, the live stream's queue, the Welcome and report_locked."""

import threading
import time

from meshlb.v1 import agent_pb2, task_pb2
from handlers import emit


class HandBacks:
    def save(self, task, data, progress):
        """A checkpoint of a running attempt (the handler's task["checkpoint"](data, progress)): sent on the live
        stream, answered by a checkpoint_ack. Over the Welcome's max_checkpoint_bytes it raises ValueError; while
        disconnected it is not kept (the next one goes). Returns whether it went out."""
        d = task["dispatch"]
        with self.lock:
            limit = self.welcome.max_checkpoint_bytes if self.welcome else 0
            if limit and len(data) > limit:
                raise ValueError("checkpoint of %d bytes is over the node's limit of %d" % (len(data), limit))
            task["seq"] += 1
            if self.stream is None or self.running.get((d.task_id, d.attempt)) is not task:
                return False
            cp = task_pb2.TaskCheckpoint(task_id=d.task_id, attempt=d.attempt, data=data, progress=progress, seq=task["seq"])
            self.stream.put(agent_pb2.ConnectRequest(checkpoint=cp))
            self.stats["checkpoints"] += 1
            return True

    def hand_back(self, refs, why, grace_ms):
        """The node wants these attempts back: their handlers are told (task["hand_back"], task["cancel"]) and end
        HANDED_BACK; one still running after grace_ms is handed back here, its late result dropped."""
        with self.lock:
            asked = []
            for ref in refs:
                task = self.running.get((ref.task_id, ref.attempt))
                if task is None or task["hand_back"].is_set():
                    continue
                task["why"] = why
                task["hand_back"].set()
                task["cancel"].set()
                asked.append(task)
                emit("hand_back", task_id=ref.task_id, attempt=ref.attempt, reason=why, grace_ms=grace_ms)
        for task in asked:
            t = threading.Timer((grace_ms or 5000) / 1000.0, self.hand_back_now, args=(task,))
            t.daemon = True
            t.start()

    def hand_back_now(self, task):
        d = task["dispatch"]
        with self.lock:
            if self.running.get((d.task_id, d.attempt)) is not task:
                return  # it ended within the grace
            del self.running[(d.task_id, d.attempt)]
            self.stats["handed_back"] += 1
            why = "handed back: %s (the handler did not end within the grace)" % task["why"]
            self.report_locked(d, task_pb2.RESULT_STATUS_HANDED_BACK, b"", why)
            self.changed.notify_all()
        emit("result", task_id=d.task_id, attempt=d.attempt, status="handed_back", error=why)
