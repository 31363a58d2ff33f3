// The context keys this agent holds warm (a session's KV cache, a dataset, a
// loaded model: whatever a task's context_key names), reported to the node so
// tasks with those keys come here first (docs/policies.md, context routing).
//
//   agent.contexts.hold('session-42', 'dataset-7');  // now warm here
//   agent.contexts.drop('session-42');               // evicted
//
// The set outlives the stream: after every welcome the whole set goes to the
// node with `reset`, so a reconnect (or a new leader) learns it again; changes
// made while connected go as deltas, at most CONTEXTS_PER_MESSAGE keys a
// message. At most MAX_HELD keys are held (the node keeps as many): holding
// one more forgets the oldest, reported as dropped.
import type { AgentContexts, ConnectRequest } from '../gen/meshlb/v1/agent.js';

/** Keys held at once, as the node keeps per agent (src/mesh/context-holders.ts). */
export const MAX_HELD = 4096;
/** Keys per AgentContexts message (the node refuses more). */
const CONTEXTS_PER_MESSAGE = 4096;
/** A context key's size limit, as TaskSpec.context_key's. */
const MAX_KEY_BYTES = 256;

export interface ContextPort {
  /** The stream is welcomed: a message written now reaches the node. */
  connected(): boolean;
  write(m: ConnectRequest): void;
}

export class AgentContextSet {
  private readonly held = new Set<string>();
  /** Some key was ever held: a welcome then resets the node's view even when none is left. */
  private used = false;

  constructor(
    private readonly port: ContextPort,
    initial: readonly string[] = [],
  ) {
    for (const k of initial) this.add(k, []);
  }

  /** Report keys as warm here (the newest last); throws TypeError for an empty or over-long key. */
  hold(...keys: string[]): void {
    const dropped: string[] = [];
    for (const k of keys) check(k);
    for (const k of keys) this.add(k, dropped);
    this.send({ held: keys, dropped: dropped.filter((k) => !this.held.has(k)), reset: false });
  }

  /** Report keys as no longer warm here. */
  drop(...keys: string[]): void {
    const gone = keys.filter((k) => this.held.delete(k));
    if (gone.length > 0) this.send({ held: [], dropped: gone, reset: false });
  }

  /** The keys held, oldest first. */
  list(): string[] {
    return [...this.held];
  }

  get size(): number {
    return this.held.size;
  }

  /** After a welcome: the whole set, replacing whatever the node knew of this agent. */
  announce(): void {
    if (this.used) this.send({ held: this.list(), dropped: [], reset: true });
  }

  private add(key: string, dropped: string[]): void {
    this.used = true;
    this.held.delete(key);
    this.held.add(key);
    if (this.held.size > MAX_HELD) {
      const oldest = this.held.values().next().value as string;
      this.held.delete(oldest);
      dropped.push(oldest);
    }
  }

  private send(m: AgentContexts): void {
    if (!this.port.connected()) return; // the next welcome announces the whole set
    const write = (value: AgentContexts): void => this.port.write({ msg: { $case: 'contexts', value } });
    if (m.held.length + m.dropped.length <= CONTEXTS_PER_MESSAGE) {
      if (m.held.length + m.dropped.length > 0 || m.reset) write(m);
      return;
    }
    // Too many for one message: the drops, then the keys held, `reset` on the first.
    let reset = m.reset;
    for (const [list, isHeld] of [
      [m.dropped, false],
      [m.held, true],
    ] as const) {
      for (let i = 0; i < list.length; i += CONTEXTS_PER_MESSAGE) {
        const part = list.slice(i, i + CONTEXTS_PER_MESSAGE);
        write({ held: isHeld ? part : [], dropped: isHeld ? [] : part, reset });
        reset = false;
      }
    }
  }
}

function check(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('a context key must be a non-empty string');
  const n = Buffer.byteLength(key);
  if (n > MAX_KEY_BYTES) throw new TypeError(`a context key is at most ${MAX_KEY_BYTES} bytes (got ${n})`);
}
