// The agent's side of checkpoints (docs/agent-protocol.md, "Checkpoints"):
// a handler's task.checkpoint() goes out as a ConnectRequest.checkpoint and
// waits for the node's CheckpointAck; a hand-back the node asks for (a
// Cancels with hand_back, a DrainOrder with migrate) aborts the tasks'
// `handBack` signals and, past the grace, hands them back itself.
//
// Invariants:
// - every promise checkpoint() returned settles once: by the node's ack, or
//   rejected when the stream breaks or the agent closes before it;
// - seq grows per attempt (RunningTask.checkpointSeq): the home keeps the
//   highest, so a late duplicate never replaces a newer checkpoint.
import type { CheckpointAck, ConnectRequest } from '../gen/meshlb/v1/agent.js';
import type { TaskRef } from '../gen/meshlb/v1/task.js';
import type { Logger } from '../util/log.js';
import { CheckpointError, HandBackRequest } from './errors.js';
import type { RunningTask } from './task.js';

/** Room a checkpoint leaves in a message for its other fields. */
const MESSAGE_OVERHEAD = 1024;

export interface CheckpointStats {
  checkpointsSent: number;
  checkpointsAccepted: number;
  /** Refused by the node (CheckpointAck.error), or not sendable. */
  checkpointsRefused: number;
}

interface CheckpointPeer {
  /** A welcomed stream is up. */
  connected(): boolean;
  write(m: ConnectRequest): void;
  maxMessageBytes(): number;
  readonly running: ReadonlyMap<string, RunningTask>;
  /** The grace is over: end the attempt as handed back now. */
  handBackNow(t: RunningTask, why: string): void;
  log(): Logger;
}

interface Waiting {
  resolve(): void;
  reject(err: Error): void;
}

export class AgentCheckpoints {
  /** `${taskId}#${attempt}#${seq}` → the checkpoint() call waiting for its ack. */
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly stats: CheckpointStats,
    private readonly peer: CheckpointPeer,
  ) {}

  /** Send one checkpoint of `t` (RunningTask.checkpoint). */
  save(t: RunningTask, data: Buffer, progress: number): Promise<void> {
    const p = this.peer;
    const refuse = (why: string): Promise<void> => {
      this.stats.checkpointsRefused++;
      return Promise.reject(new CheckpointError(`checkpoint of task ${t.id} attempt ${t.attempt}: ${why}`));
    };
    if (p.running.get(t.key) !== t) return refuse('the attempt no longer runs here');
    if (!p.connected()) return refuse('not connected to a node; not sent');
    const max = p.maxMessageBytes() - MESSAGE_OVERHEAD;
    if (data.length > max) return refuse(`${data.length} bytes cannot fit in one message (at most ${max})`);
    const seq = ++t.checkpointSeq;
    const value = { taskId: t.id, attempt: t.attempt, data, progress, seq, atUnixMs: 0, sizeBytes: data.length };
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(`${t.key}#${seq}`, { resolve, reject });
      this.stats.checkpointsSent++;
      p.write({ msg: { $case: 'checkpoint', value } });
    });
  }

  /** The node's answers. */
  acked(acks: readonly CheckpointAck[]): void {
    for (const a of acks) {
      const key = `${a.taskId}#${a.attempt}#${a.seq}`;
      const w = this.waiting.get(key);
      if (!w) continue;
      this.waiting.delete(key);
      if (a.accepted) {
        this.stats.checkpointsAccepted++;
        w.resolve();
        continue;
      }
      this.stats.checkpointsRefused++;
      this.peer.log().warn({ task: a.taskId, attempt: a.attempt, why: a.error }, 'agent: checkpoint refused by node');
      w.reject(new CheckpointError(a.error || 'checkpoint refused'));
    }
  }

  /** The stream broke or the agent closed: no ack will come for what waits. */
  broken(why: string): void {
    if (this.waiting.size === 0) return;
    const ws = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of ws) w.reject(new CheckpointError(`checkpoint unanswered: ${why}`));
  }

  /** The node asks these attempts back (a preemption): each checkpoints and ends, or is handed back after graceMs. */
  handBack(refs: readonly TaskRef[], why: string, graceMs: number): void {
    for (const r of refs) {
      const t = this.peer.running.get(`${r.taskId}#${r.attempt}`);
      if (t) this.ask(t, why || 'hand back asked by node', graceMs);
    }
  }

  /** A drain with migration: every running attempt is asked back. */
  handBackAll(why: string, graceMs: number): void {
    for (const t of [...this.peer.running.values()]) this.ask(t, why || 'drain', graceMs);
  }

  private ask(t: RunningTask, why: string, graceMs: number): void {
    if (t.handBackAsked) return;
    t.askHandBack(new HandBackRequest(why, graceMs));
    this.peer.log().info({ task: t.id, attempt: t.attempt, why, graceMs }, 'agent: hand-back asked');
    const timer = setTimeout(() => this.peer.handBackNow(t, why), Math.max(0, graceMs));
    timer.unref();
  }
}
