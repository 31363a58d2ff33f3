// How long a task runs at this agent, told to its node (ConnectRequest.speed,
// AgentSpeed) after every Welcome from a node that takes it, so a node that has not measured the agent
// yet (a node just started, a new leader, a reconnect to another replica)
// places by it from the first task instead of trying the agent one task at a
// time (docs/policies.md, node-score). The figure is the mean run time of the
// agent's recent successful tasks (an EWMA kept across reconnects), else what
// the options declare (expectedRunMs); with neither, nothing is sent. While
// connected the node measures the agent itself, so nothing more is sent.
import { ResultStatus, type TaskResult } from '../gen/meshlb/v1/task.js';
import type { Welcome } from '../gen/meshlb/v1/agent.js';
import type { ContextPort } from './contexts.js';

/** Weight of the newest run in the mean (the node's latency EWMA uses the same). */
const ALPHA = 0.1;

export interface AgentSpeedOptions {
  /**
   * How long a task usually runs here, ms: a node that has not measured this agent yet places by it (once the
   * agent has run tasks, their mean run time goes instead). Unset: the node tries the agent one task at a time.
   */
  expectedRunMs?: number;
}

export class RunTimes {
  private mean = 0;
  private runs = 0;
  private readonly declaredMs: number;

  constructor(
    private readonly port: ContextPort,
    declaredMs: number | undefined,
  ) {
    if (declaredMs !== undefined && !(Number.isFinite(declaredMs) && declaredMs >= 0))
      throw new TypeError(`agent: expectedRunMs must be a finite number >= 0, got ${declaredMs}`);
    this.declaredMs = declaredMs ?? 0;
  }

  /** A result on its way to the node: a successful run counts toward the mean. Returns it. */
  seen(r: TaskResult): TaskResult {
    if (r.status === ResultStatus.RESULT_STATUS_OK && r.runMicros > 0) {
      const ms = r.runMicros / 1000;
      this.mean = this.runs++ === 0 ? ms : this.mean + ALPHA * (ms - this.mean);
    }
    return r;
  }

  /** What the node is told: the measured mean, else the declared figure; 0 when neither. */
  get runMs(): number {
    return this.runs > 0 ? this.mean : this.declaredMs;
  }

  /** After a Welcome: tell the node, when there is anything to tell and it takes it (an older node ends the stream). */
  announce(w: Welcome): void {
    const runMs = this.runMs;
    if (w.takesSpeed && runMs > 0 && this.port.connected())
      this.port.write({ msg: { $case: 'speed', value: { runMs, measured: this.runs > 0 } } });
  }
}
