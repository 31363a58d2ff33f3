// What a node's agents said they hold warm (AgentContexts): for a context key,
// which agents hold it, most recent report first. The node's picker asks it
// before the hash ring (src/policies/context.ts), so a key goes to an agent
// whose caches hold it even when the ring names another one: data staged on
// chosen agents ahead of time, caches an agent kept across a restart, a hot key
// that overflowed to a second agent and stayed warm there.
//
// Owned by AgentSessions (one per node replica; soft state, like the sessions:
// a new leader learns it again from the agents' next reports). Bounded: at most
// PER_AGENT keys per agent (the oldest report goes first past it) and
// HOLDERS_PER_KEY agents per key (the oldest holder goes first), so memory is
// at most agents x PER_AGENT entries whatever agents send.
import { LIMITS } from '../util/limits.js';
import type { ContextLookup } from '../policies/types.js';
import type { AgentContexts } from '../gen/meshlb/v1/agent.js';

/** Keys one agent may hold at once (older reports are forgotten past it), and keys per message. */
export const CONTEXTS_PER_AGENT = 4096;
/** Holders remembered per key, most recent first. */
export const HOLDERS_PER_KEY = 8;

/** Why an AgentContexts message is refused (the stream ends INVALID_ARGUMENT), or ''. */
export function contextsOverLimits(m: AgentContexts): string {
  const n = m.held.length + m.dropped.length;
  if (n > CONTEXTS_PER_AGENT) return `contexts: ${n} keys in one message (at most ${CONTEXTS_PER_AGENT})`;
  for (const list of [m.held, m.dropped]) {
    for (const k of list) {
      if (k.length === 0) return 'contexts: an empty key';
      if (Buffer.byteLength(k) > LIMITS.contextKey)
        return `contexts: a key of ${Buffer.byteLength(k)} bytes (at most ${LIMITS.contextKey})`;
    }
  }
  return '';
}

export class ContextHolders implements ContextLookup {
  /** key -> agent ids, most recent first. */
  private readonly byKey = new Map<string, string[]>();
  /** agent id -> its keys, oldest report first (a Set keeps insertion order). */
  private readonly byAgent = new Map<string, Set<string>>();

  holders(key: string): readonly string[] | undefined {
    return this.byKey.get(key);
  }

  /** Keys `agentId` holds, oldest report first (admin and tests). */
  heldBy(agentId: string): readonly string[] {
    return [...(this.byAgent.get(agentId) ?? [])];
  }

  /** Apply one report (checked with contextsOverLimits first). */
  apply(agentId: string, m: AgentContexts): void {
    if (m.reset) this.forget(agentId);
    for (const k of m.dropped) this.drop(agentId, k);
    for (const k of m.held) this.hold(agentId, k);
  }

  /** The agent is gone: none of its keys route to it any more. */
  forget(agentId: string): void {
    const keys = this.byAgent.get(agentId);
    if (!keys) return;
    for (const k of keys) this.unlink(agentId, k);
    this.byAgent.delete(agentId);
  }

  get size(): number {
    return this.byKey.size;
  }

  private hold(agentId: string, key: string): void {
    let keys = this.byAgent.get(agentId);
    if (!keys) this.byAgent.set(agentId, (keys = new Set()));
    keys.delete(key); // a repeat report makes it the newest
    keys.add(key);
    if (keys.size > CONTEXTS_PER_AGENT) {
      const oldest = keys.values().next().value as string;
      keys.delete(oldest);
      this.unlink(agentId, oldest);
    }
    const ids = this.byKey.get(key);
    if (!ids) {
      this.byKey.set(key, [agentId]);
      return;
    }
    const at = ids.indexOf(agentId);
    if (at >= 0) ids.splice(at, 1);
    ids.unshift(agentId);
    if (ids.length > HOLDERS_PER_KEY) {
      const gone = ids.pop()!;
      this.byAgent.get(gone)?.delete(key);
    }
  }

  private drop(agentId: string, key: string): void {
    if (this.byAgent.get(agentId)?.delete(key)) this.unlink(agentId, key);
  }

  private unlink(agentId: string, key: string): void {
    const ids = this.byKey.get(key);
    if (!ids) return;
    const at = ids.indexOf(agentId);
    if (at >= 0) ids.splice(at, 1);
    if (ids.length === 0) this.byKey.delete(key);
  }
}
