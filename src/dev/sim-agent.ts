// A minimal simulated agent on the raw AgentService stream, for `meshlb dev`
// and the mesh tests: no reconnects, no handlers, just a service time and a
// failure rate from an injected random source, results batched per turn of
// the event loop. It records what it held at once (maxHeld) so tests can prove
// the node never exceeded its slots, and it can die abruptly (kill), stop
// heartbeating (mute) or stop reading (pause).
import { credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { AgentServiceClient, type ConnectRequest, type ConnectResponse } from '../gen/meshlb/v1/agent.js';
import { MeshFailure, ResultStatus, type Dispatch, type TaskResult } from '../gen/meshlb/v1/task.js';

export interface SimAgentOptions {
  readonly address: string;
  readonly agentId: string;
  readonly kinds: readonly string[];
  readonly slots: number;
  readonly labels?: readonly { key: string; value: string }[];
  /** Mean service time (ms); 0 = answer on the next turn. Uniform in [0.5, 1.5]·mean. */
  readonly serviceTimeMs?: number;
  readonly failureRate?: number;
  readonly random?: () => number;
  readonly heartbeatIntervalMs?: number;
  /** Share one client (one HTTP/2 connection) among many agents. */
  readonly client?: AgentServiceClient;
  /** The mesh (topology name) this agent expects; a node of another mesh refuses it. Default: any. */
  readonly mesh?: string;
  /** Called when an attempt starts (tests count executions). */
  readonly onStart?: (d: Dispatch) => void;
  /** The version its hello declares (default 'sim'): version ramps place by it. */
  readonly version?: string;
}

const EMPTY = Buffer.alloc(0);

export class SimAgent {
  /** No-op attempts (service time 0) answered together on the next turn. */
  private immediate: Dispatch[] = [];
  private immediateFail: boolean[] = [];
  private call: ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  private readonly held = new Map<string, NodeJS.Timeout | null>();
  private results: TaskResult[] = [];
  private flushing = false;
  private hb: NodeJS.Timeout | undefined;
  private muted = false;
  private ownClient: AgentServiceClient | undefined;
  welcomed = false;
  closed = false;
  /** The most attempts held at once. */
  maxHeld = 0;
  completed = 0;
  failed = 0;
  cancelled = 0;
  status: { code: number; details: string } | undefined;

  constructor(readonly opts: SimAgentOptions) {}

  get inFlight(): number {
    return this.held.size;
  }

  /** The attempts it runs now, as `taskId#attempt` (tests count them per concurrency key). */
  heldRefs(): IterableIterator<string> {
    return this.held.keys();
  }

  start(): Promise<void> {
    const o = this.opts;
    let client = o.client;
    if (!client) {
      client = new AgentServiceClient(o.address, credentials.createInsecure());
      this.ownClient = client;
    }
    const call = client.connect();
    this.call = call;
    const welcomed = new Promise<void>((resolve, reject) => {
      call.on('data', (m: ConnectResponse) => {
        const msg = m.msg;
        if (!msg) return;
        if (msg.$case === 'welcome') {
          this.welcomed = true;
          resolve();
        } else if (msg.$case === 'assignments') for (const d of msg.value.tasks) this.run(d);
        else if (msg.$case === 'cancels') {
          for (const ref of msg.value.refs) {
            const key = `${ref.taskId}#${ref.attempt}`;
            if (!this.held.has(key)) continue;
            const t = this.held.get(key);
            if (t) clearTimeout(t);
            this.cancelled++;
            this.finish(ref.taskId, ref.attempt, ResultStatus.RESULT_STATUS_ERROR, 'cancelled');
          }
        }
      });
      call.on('status', (s) => {
        this.status = { code: s.code, details: s.details };
        this.stop();
        reject(new Error(`agent ${o.agentId}: stream ended ${s.code} ${s.details}`));
      });
      call.on('error', () => {});
    });
    welcomed.catch(() => {});
    call.write({
      msg: {
        $case: 'hello',
        value: {
          agentId: o.agentId,
          kinds: [...o.kinds],
          labels: [...(o.labels ?? [])],
          slots: o.slots,
          version: o.version ?? 'sim',
          mesh: o.mesh ?? '',
          meshId: '',
          nodeCell: '',
          running: [],
        },
      },
    });
    this.hb = setInterval(() => {
      if (!this.muted && this.call) {
        this.call.write({
          msg: { $case: 'load', value: { inFlight: this.held.size, cpu: 0, memory: 0, gpu: 0, draining: false } },
        });
      }
    }, o.heartbeatIntervalMs ?? 1000);
    this.hb.unref?.();
    return welcomed;
  }

  private run(d: Dispatch): void {
    const key = `${d.taskId}#${d.attempt}`;
    if (this.held.has(key)) return;
    this.opts.onStart?.(d);
    const rnd = this.opts.random ?? Math.random;
    const mean = this.opts.serviceTimeMs ?? 0;
    const fail = (this.opts.failureRate ?? 0) > 0 && rnd() < this.opts.failureRate!;
    if (mean > 0) {
      const ms = mean * (0.5 + rnd());
      const done = (): void => {
        if (!this.held.has(key)) return;
        this.finish(
          d.taskId,
          d.attempt,
          fail ? ResultStatus.RESULT_STATUS_ERROR : ResultStatus.RESULT_STATUS_OK,
          fail ? 'simulated failure' : '',
          Math.round(ms * 1000),
        );
      };
      this.held.set(key, setTimeout(done, ms));
    } else {
      // No-op: answered on the next turn, all of this turn's together (no closure per attempt).
      this.held.set(key, null);
      if (this.immediate.length === 0) setImmediate(() => this.answerImmediate());
      this.immediate.push(d);
      this.immediateFail.push(fail);
    }
    if (this.held.size > this.maxHeld) this.maxHeld = this.held.size;
  }

  private answerImmediate(): void {
    const list = this.immediate;
    const fails = this.immediateFail;
    this.immediate = [];
    this.immediateFail = [];
    for (let i = 0; i < list.length; i++) {
      const d = list[i]!;
      if (!this.held.has(`${d.taskId}#${d.attempt}`)) continue;
      const fail = fails[i]!;
      this.finish(
        d.taskId,
        d.attempt,
        fail ? ResultStatus.RESULT_STATUS_ERROR : ResultStatus.RESULT_STATUS_OK,
        fail ? 'simulated failure' : '',
      );
    }
  }

  /** `runMicros`: the simulated run time, reported as a real agent reports its own. */
  private finish(taskId: string, attempt: number, status: ResultStatus, error: string, runMicros = 0): void {
    this.held.delete(`${taskId}#${attempt}`);
    if (status === ResultStatus.RESULT_STATUS_OK) this.completed++;
    else this.failed++;
    this.results.push({
      taskId,
      attempt,
      status,
      output: EMPTY,
      error,
      agentId: this.opts.agentId,
      nodeCell: '',
      runMicros,
      meshFailure: MeshFailure.MESH_FAILURE_UNSPECIFIED,
      retryAfterMs: 0,
    });
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => {
        this.flushing = false;
        const results = this.results;
        this.results = [];
        if (this.call && !this.closed && results.length > 0)
          this.call.write({ msg: { $case: 'results', value: { results } } });
      });
    }
  }

  /** Stop sending heartbeats (the node should declare it dead). */
  mute(): void {
    this.muted = true;
    for (const t of this.held.values()) if (t) clearTimeout(t);
  }

  /** Stop reading from the stream (flow control backs up at the node). */
  pause(): void {
    this.call?.pause();
  }

  resume(): void {
    this.call?.resume();
  }

  /** Abrupt death: the stream is cancelled, nothing more is sent. */
  kill(): void {
    this.call?.cancel();
    this.stop();
  }

  /** Graceful: end the stream. */
  end(): void {
    this.call?.end();
    this.stop();
  }

  private stop(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.hb) clearInterval(this.hb);
    for (const t of this.held.values()) if (t) clearTimeout(t);
    this.held.clear();
    this.ownClient?.close();
  }
}
