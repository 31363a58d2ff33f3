// A minimal, real gRPC server for SDK tests: AgentService and TaskService on
// 127.0.0.1:0. The test drives it (assign, cancel, drain, kill a stream, move a
// task to a state) and observes what the agent or client sent. It makes no
// decisions of its own beyond what a test asks for.
import {
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import {
  AgentServiceService,
  type AgentHello,
  type AgentLoad,
  type AgentSpeed,
  type CheckpointAck,
  type ConnectRequest,
  type ConnectResponse,
} from '../../src/gen/meshlb/v1/agent.js';
import {
  MeshFailure,
  TaskServiceService,
  TaskState,
  type Dispatch,
  type SubmitBatchItem,
  type Task,
  type TaskCheckpoint,
  type TaskRef,
  type TaskResult,
  type TaskSpec,
  type WatchRequest,
  type WatchResponse,
} from '../../src/gen/meshlb/v1/task.js';
import {
  MeshError,
  notFound,
  invalidArgument,
  notLeader,
  resourceExhausted,
  toServiceError,
} from '../../src/util/errors.js';

export interface FakeNodeOptions {
  nodeCell?: string;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  maxMessageBytes?: number;
  maxCheckpointBytes?: number;
  /** Send a Welcome as soon as the hello arrives (default true). */
  autoWelcome?: boolean;
  /** The Welcome's takes_speed (default false: the agent sends no AgentSpeed). */
  takesSpeed?: boolean;
}

export class FakeAgentSession {
  hello: AgentHello | undefined;
  readonly loads: { at: number; load: AgentLoad }[] = [];
  readonly results: TaskResult[] = [];
  readonly started: TaskRef[] = [];
  readonly checkpoints: TaskCheckpoint[] = [];
  readonly speeds: AgentSpeed[] = [];
  /** Messages carrying results (to check batching). */
  resultMessages = 0;
  messages = 0;
  /** Task ids assigned by the auto-dispatcher and not yet answered. */
  readonly outstanding = new Set<string>();
  /** The agent half-closed its side. */
  agentEnded = false;
  /** The stream is over (either side). */
  closed = false;

  constructor(readonly call: ServerDuplexStream<ConnectRequest, ConnectResponse>) {}

  send(m: ConnectResponse): void {
    if (!this.closed) this.call.write(m);
  }

  welcome(node: FakeNode): void {
    this.send({
      msg: {
        $case: 'welcome',
        value: {
          nodeCell: node.opts.nodeCell ?? '/test/n1',
          replicaId: `${node.opts.nodeCell ?? '/test/n1'}#1`,
          heartbeatIntervalMs: node.opts.heartbeatIntervalMs ?? 1000,
          heartbeatTimeoutMs: node.opts.heartbeatTimeoutMs ?? 3000,
          maxMessageBytes: node.opts.maxMessageBytes ?? 4 * 1024 * 1024,
          mesh: '',
          meshId: '',
          maxCheckpointBytes: node.opts.maxCheckpointBytes ?? 1 << 20,
          takesSpeed: node.opts.takesSpeed ?? false,
        },
      },
    });
  }

  assign(tasks: Dispatch[]): void {
    this.send({ msg: { $case: 'assignments', value: { tasks } } });
  }

  cancel(refs: TaskRef[]): void {
    this.send({ msg: { $case: 'cancels', value: { refs, handBack: false, graceMs: 0, reason: '' } } });
  }

  /** Ask the agent to checkpoint and hand these attempts back (a preemption). */
  handBack(refs: TaskRef[], reason = 'preempted', graceMs = 5000): void {
    this.send({ msg: { $case: 'cancels', value: { refs, handBack: true, graceMs, reason } } });
  }

  /** Answer checkpoints (the node's CheckpointAck). */
  ackCheckpoints(acks: CheckpointAck[]): void {
    this.send({ msg: { $case: 'checkpointAcks', value: { acks } } });
  }

  drain(reason = 'test', migrate = false, graceMs = 0): void {
    this.send({ msg: { $case: 'drain', value: { reason, migrate, graceMs } } });
  }

  /** Break the stream with an error status, as a dying node would. */
  kill(code = status.UNAVAILABLE, details = 'killed by test'): void {
    if (this.closed) return;
    this.closed = true;
    this.call.emit('error', { code, details });
  }

  resultFor(taskId: string): TaskResult | undefined {
    return this.results.find((r) => r.taskId === taskId);
  }
}

/** A dispatch for tests. */
export function dispatch(taskId: string, kind = 'echo', payload: string | Buffer = '', attempt = 1): Dispatch {
  return {
    taskId,
    attempt,
    homeCell: '/',
    leaseMs: 30_000,
    spec: {
      idempotencyKey: '',
      kind,
      labels: [{ key: 'k', value: 'v' }],
      affinity: [],
      priority: 0,
      tenant: '',
      deadlineUnixMs: 0,
      timeoutMs: 0,
      maxAttempts: 0,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      durability: 0,
      traceParent: '',
      traceState: '',
      contextKey: '',
      contextHard: false,
      concurrencyKey: '',
      rateLimitKey: '',
      rateUnits: 0,
      debounceKey: '',
      debouncePeriodMs: 0,
      debounceMaxWaitMs: 0,
      singletonKey: '',
      singletonMode: 0,
      slots: 0,
      gangId: '',
      gangSize: 0,
    },
    traceParent: '',
    checkpoint: undefined,
    guaranteed: false,
    send: 0,
  };
}

const TERMINAL = new Set([
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELLED,
  TaskState.TASK_STATE_DEAD_LETTERED,
]);

export class FakeNode {
  readonly sessions: FakeAgentSession[] = [];
  // ---- TaskService side ----
  readonly tasks = new Map<string, Task>();
  readonly byKey = new Map<string, string>();
  readonly submitted: TaskSpec[] = [];
  /** When set, every TaskService call answers FAILED_PRECONDITION naming this leader address. */
  redirectTo: string | undefined;
  /** The next N submits answer RESOURCE_EXHAUSTED with this hint. */
  exhausted = { count: 0, retryAfterMs: 20 };
  /** Calls received per method. */
  readonly calls: Record<string, number> = {};
  /** Submits never answer (to test client deadlines). */
  hangSubmit = false;
  /** SubmitStream answers UNIMPLEMENTED (a cell without it). */
  noSubmitStream = false;
  /** SubmitStream takes batches (`tasks`); false: a cell older than them. */
  streamBatches = true;
  /** A SubmitStream request for this tenant ends the stream PERMISSION_DENIED. */
  refuseTenant: string | undefined;
  /**
   * Behave like a tiny node: queue submitted tasks, assign them to connected
   * agents within their slots, complete them from the agents' results.
   */
  autoDispatch = false;
  /** Result messages whose status was not OK count as FAILED (no retries here). */
  private queue: string[] = [];
  private pumpScheduled = false;
  private watchers = new Map<string, Set<ServerWritableStream<WatchRequest, WatchResponse>>>();
  private nextId = 1;

  private constructor(
    readonly server: Server,
    readonly port: number,
    readonly opts: FakeNodeOptions,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(opts: FakeNodeOptions = {}, port = 0): Promise<FakeNode> {
    const server = new Server({
      'grpc.max_receive_message_length': opts.maxMessageBytes ?? 4 * 1024 * 1024,
      'grpc.max_send_message_length': opts.maxMessageBytes ?? 4 * 1024 * 1024,
    });
    // The TaskService handlers below read only these request fields.
    type Req = ServerUnaryCall<{ task: TaskSpec; tasks: TaskSpec[]; taskId: string; reason: string }, unknown>;
    type Done = sendUnaryData<unknown>;
    // eslint-disable-next-line prefer-const -- assigned once the server is bound; handlers close over it
    let node!: FakeNode;
    server.addService(AgentServiceService, {
      connect: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => node.onConnect(call),
    });
    server.addService(TaskServiceService, {
      submit: (call: Req, cb: Done) => node.unary('submit', () => node.submitOne(call.request.task), cb),
      submitBatch: (call: Req, cb: Done) =>
        node.unary(
          'submitBatch',
          () => ({ items: (call.request.tasks as TaskSpec[]).map((t) => node.batchItem(t)) }),
          cb,
        ),
      submitStream: (call: ServerDuplexStream<{ requestId: number; task: TaskSpec }, unknown>) =>
        node.onSubmitStream(call),
      get: (call: Req, cb: Done) => node.unary('get', () => ({ task: node.mustGet(call.request.taskId) }), cb),
      cancel: (call: Req, cb: Done) =>
        node.unary(
          'cancel',
          () => {
            const t = node.mustGet(call.request.taskId);
            if (!TERMINAL.has(t.state))
              node.setState(t.id, TaskState.TASK_STATE_CANCELLED, undefined, call.request.reason);
            return { task: node.tasks.get(t.id) };
          },
          cb,
        ),
      watch: (call: ServerWritableStream<WatchRequest, WatchResponse>) => node.onWatch(call),
    });
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    node = new FakeNode(server, bound, opts);
    return node;
  }

  /** The latest session of an agent id (or the latest of all). */
  session(agentId?: string): FakeAgentSession | undefined {
    for (let i = this.sessions.length - 1; i >= 0; i--) {
      const s = this.sessions[i]!;
      if (agentId === undefined || s.hello?.agentId === agentId) return s;
    }
    return undefined;
  }

  liveSessions(): FakeAgentSession[] {
    return this.sessions.filter((s) => !s.closed && s.hello);
  }

  async stop(): Promise<void> {
    for (const s of this.sessions) s.closed = true;
    this.server.forceShutdown();
  }

  private onConnect(call: ServerDuplexStream<ConnectRequest, ConnectResponse>): void {
    const s = new FakeAgentSession(call);
    this.sessions.push(s);
    call.on('data', (m: ConnectRequest) => {
      s.messages++;
      switch (m.msg?.$case) {
        case 'hello':
          s.hello = m.msg.value;
          if (this.opts.autoWelcome !== false) s.welcome(this);
          this.schedulePump();
          break;
        case 'load':
          s.loads.push({ at: performance.now(), load: m.msg.value });
          break;
        case 'results':
          s.resultMessages++;
          s.results.push(...m.msg.value.results);
          if (this.autoDispatch) this.onAutoResults(s, m.msg.value.results);
          break;
        case 'started':
          s.started.push(...m.msg.value.refs);
          break;
        case 'checkpoint':
          s.checkpoints.push(m.msg.value);
          break;
        case 'speed':
          s.speeds.push(m.msg.value);
          break;
      }
    });
    call.on('end', () => {
      s.agentEnded = true;
      if (!s.closed) {
        s.closed = true;
        call.end();
      }
    });
    const gone = () => {
      s.closed = true;
      if (this.autoDispatch && s.outstanding.size > 0) {
        this.queue.push(...s.outstanding);
        s.outstanding.clear();
        this.schedulePump();
      }
    };
    call.on('error', gone);
    call.on('cancelled', gone);
    call.on('finish', gone);
  }

  private schedulePump(): void {
    if (!this.autoDispatch || this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    for (const s of this.sessions) {
      if (this.queue.length === 0) return;
      if (s.closed || !s.hello) continue;
      const free = s.hello.slots - s.outstanding.size;
      if (free <= 0) continue;
      const ids = this.queue.splice(0, free);
      const batch: Dispatch[] = [];
      for (const id of ids) {
        const t = this.tasks.get(id);
        if (!t || TERMINAL.has(t.state)) continue;
        s.outstanding.add(id);
        const attempt = t.attempt + 1;
        this.tasks.set(id, { ...t, attempt, state: TaskState.TASK_STATE_DISPATCHED });
        batch.push({
          taskId: id,
          attempt,
          homeCell: '/',
          spec: t.spec,
          leaseMs: 30_000,
          traceParent: '',
          checkpoint: undefined,
          guaranteed: false,
          send: 0,
        });
      }
      if (batch.length) s.assign(batch);
    }
  }

  private onAutoResults(s: FakeAgentSession, results: TaskResult[]): void {
    for (const r of results) {
      if (!s.outstanding.delete(r.taskId)) continue;
      const t = this.tasks.get(r.taskId);
      if (!t || TERMINAL.has(t.state) || t.attempt !== r.attempt) continue;
      this.setState(r.taskId, r.status === 1 ? TaskState.TASK_STATE_COMPLETED : TaskState.TASK_STATE_FAILED, r);
    }
    this.schedulePump();
  }

  // ---- TaskService ----

  /**
   * SubmitStream as the cell serves it: one answer per request, in order.
   * `hangSubmit`: requests are taken (counted, recorded) and never answered;
   * `redirectTo`: items FAILED_PRECONDITION (a forwarded batch that reached a
   * replica no longer leading: no address per item); `refuseTenant`: a
   * request for it ends the stream PERMISSION_DENIED (the guard's refusal);
   * `noSubmitStream`: UNIMPLEMENTED. A request with `tasks` is answered in `items`.
   */
  private onSubmitStream(call: ServerDuplexStream<{ requestId: number; task: TaskSpec }, unknown>): void {
    this.count('submitStream');
    if (this.noSubmitStream) {
      call.emit('error', { code: status.UNIMPLEMENTED, details: 'SubmitStream is not served here' });
      return;
    }
    let open = true;
    call.on('data', (req: { requestId: number; task?: TaskSpec; tasks?: TaskSpec[] }) => {
      if (!open) return;
      // `streamBatches` false: a cell older than `tasks`, which sees a request without a task.
      const batch = this.streamBatches && (req.tasks?.length ?? 0) > 0;
      const specs = batch ? req.tasks! : [req.task];
      if (batch) this.count('streamBatch');
      for (let i = 0; i < specs.length; i++) this.count('streamItem');
      if (this.refuseTenant !== undefined && specs.some((t) => t?.tenant === this.refuseTenant)) {
        open = false;
        call.emit('error', { code: status.PERMISSION_DENIED, details: `tenant ${this.refuseTenant} refused` });
        return;
      }
      if (this.hangSubmit) {
        for (const t of specs) if (t) this.submitted.push(t);
        return;
      }
      const items = specs.map((t) =>
        this.redirectTo
          ? {
              taskId: '',
              existing: false,
              code: status.FAILED_PRECONDITION,
              message: 'not the leader',
              retryAfterMs: 0,
            }
          : this.batchItem(t),
      );
      call.write(batch ? { requestId: req.requestId, items } : { requestId: req.requestId, item: items[0], items: [] });
    });
    call.on('end', () => open && call.end());
    call.on('error', () => {});
  }

  private count(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
  }

  private unary<T>(method: string, fn: () => T, cb: sendUnaryData<T>): void {
    this.count(method);
    if (method === 'submit' && this.hangSubmit) return;
    try {
      if (this.redirectTo) throw notLeader('not the leader', 'leader#1', this.redirectTo);
      cb(null, fn());
    } catch (err) {
      cb(toServiceError(err));
    }
  }

  private submitOne(spec: TaskSpec | undefined): { taskId: string; existing: boolean; state: TaskState } {
    if (!spec || !spec.kind) throw invalidArgument('task.kind is required');
    if (this.exhausted.count > 0) {
      this.exhausted.count--;
      throw resourceExhausted('queue full', this.exhausted.retryAfterMs);
    }
    this.submitted.push(spec);
    if (spec.idempotencyKey) {
      const id = this.byKey.get(spec.idempotencyKey);
      if (id) return { taskId: id, existing: true, state: this.tasks.get(id)!.state };
    }
    const id = `t-${this.nextId++}`;
    if (spec.idempotencyKey) this.byKey.set(spec.idempotencyKey, id);
    if (this.autoDispatch) {
      this.queue.push(id);
      this.schedulePump();
    }
    const now = Date.now();
    this.tasks.set(id, {
      id,
      spec,
      state: TaskState.TASK_STATE_QUEUED,
      attempt: 0,
      homeCell: '/',
      createdUnixMs: now,
      updatedUnixMs: now,
      result: undefined,
      reason: '',
      checkpoint: undefined,
      waiting: '',
    });
    return { taskId: id, existing: false, state: TaskState.TASK_STATE_QUEUED };
  }

  private batchItem(spec: TaskSpec | undefined): SubmitBatchItem {
    try {
      const r = this.submitOne(spec);
      return { taskId: r.taskId, existing: r.existing, code: 0, message: '', retryAfterMs: 0 };
    } catch (err) {
      const e = err instanceof MeshError ? err : new MeshError(status.INTERNAL, String(err));
      const retryAfterMs = Number(e.details['meshlb-retry-after-ms'] ?? 0);
      return { taskId: '', existing: false, code: e.code, message: e.message, retryAfterMs };
    }
  }

  private mustGet(id: string): Task {
    const t = this.tasks.get(id);
    if (!t) throw notFound(`task ${id} not found`);
    return t;
  }

  /** Move a task to a state (COMPLETED etc.) and tell its watchers. */
  setState(id: string, state: TaskState, result?: Partial<TaskResult>, reason = ''): Task {
    const t = this.mustGet(id);
    const next: Task = {
      ...t,
      state,
      attempt: Math.max(1, t.attempt),
      updatedUnixMs: Date.now(),
      reason,
      result: result
        ? {
            taskId: id,
            attempt: 1,
            status: 1,
            output: Buffer.alloc(0),
            error: '',
            agentId: 'a',
            nodeCell: '/n',
            runMicros: 1,
            meshFailure: MeshFailure.MESH_FAILURE_UNSPECIFIED,
            retryAfterMs: 0,
            ...result,
          }
        : t.result,
    };
    this.tasks.set(id, next);
    for (const w of this.watchers.get(id) ?? []) {
      w.write({ task: next });
      if (TERMINAL.has(state)) w.end();
    }
    if (TERMINAL.has(state)) this.watchers.delete(id);
    return next;
  }

  private onWatch(call: ServerWritableStream<WatchRequest, WatchResponse>): void {
    this.count('watch');
    if (this.redirectTo) {
      call.emit('error', toServiceError(notLeader('not the leader', 'leader#1', this.redirectTo)));
      return;
    }
    const t = this.tasks.get(call.request.taskId);
    if (!t) {
      call.emit('error', toServiceError(notFound(`task ${call.request.taskId} not found`)));
      return;
    }
    call.write({ task: t });
    if (TERMINAL.has(t.state)) {
      call.end();
      return;
    }
    let set = this.watchers.get(t.id);
    if (!set) this.watchers.set(t.id, (set = new Set()));
    set.add(call);
    call.on('cancelled', () => set.delete(call));
  }

  watcherCount(id: string): number {
    return this.watchers.get(id)?.size ?? 0;
  }
}

export { Metadata };
