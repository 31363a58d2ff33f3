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
    if (!this.used) return;
    const all = this.list();
    this.send({ held: all.slice(0, CONTEXTS_PER_MESSAGE), dropped: [], reset: true });
    for (let i = CONTEXTS_PER_MESSAGE; i < all.length; i += CONTEXTS_PER_MESSAGE)
      this.send({ held: all.slice(i, i + CONTEXTS_PER_MESSAGE), dropped: [], reset: false });
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
    for (let i = 0; i < Math.max(m.held.length, m.dropped.length, 1); i += CONTEXTS_PER_MESSAGE) {
      const part: AgentContexts = {
        held: m.held.slice(i, i + CONTEXTS_PER_MESSAGE),
        dropped: m.dropped.slice(i, i + CONTEXTS_PER_MESSAGE),
        reset: m.reset && i === 0,
      };
      if (part.held.length + part.dropped.length > CONTEXTS_PER_MESSAGE) {
        this.port.write({ msg: { $case: 'contexts', value: { ...part, held: [] } } });
        this.port.write({ msg: { $case: 'contexts', value: { ...part, dropped: [], reset: false } } });
      } else if (part.held.length + part.dropped.length > 0 || part.reset) {
        this.port.write({ msg: { $case: 'contexts', value: part } });
      }
    }
  }
}

function check(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('a context key must be a non-empty string');
  const n = Buffer.byteLength(key);
  if (n > MAX_KEY_BYTES) throw new TypeError(`a context key is at most ${MAX_KEY_BYTES} bytes (got ${n})`);
}
