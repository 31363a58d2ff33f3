// Single-server membership changes: wire encoding and the pure function that
// applies one change to a configuration. Every replica applies the same
// committed changes in the same order, so applyToConf must be deterministic and
// must never throw on a change that merely makes no sense any more (it could
// have been valid when proposed): such changes are no-ops.

import type { ConfChange, ConfChangeType, ConfState } from './types.js';

const TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode'];
const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return enc.encode(JSON.stringify({ type: cc.type, node: cc.node, context: cc.context }));
}

export class ConfChangeDecodeError extends Error {
  constructor(reason: string) {
    super(`raft: bad conf change: ${reason}`);
    this.name = 'ConfChangeDecodeError';
  }
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(data));
  } catch (err) {
    throw new ConfChangeDecodeError(`not JSON (${String(err)})`);
  }
  if (typeof v !== 'object' || v === null) throw new ConfChangeDecodeError('not an object');
  const o = v as Record<string, unknown>;
  if (typeof o.type !== 'string' || !(TYPES as readonly string[]).includes(o.type)) {
    throw new ConfChangeDecodeError(`unknown type ${String(o.type)}`);
  }
  if (typeof o.node !== 'string' || o.node === '') throw new ConfChangeDecodeError('missing node');
  const context = typeof o.context === 'string' ? o.context : '';
  return { type: o.type as ConfChangeType, node: o.node, context };
}

/**
 * The configuration after `cc`. Removing the last voter is refused (no-op):
 * a group with no voters could never elect a leader again.
 */
export function applyToConf(conf: ConfState, cc: ConfChange): ConfState {
  const voters = conf.voters.filter((id) => id !== cc.node);
  const learners = conf.learners.filter((id) => id !== cc.node);
  switch (cc.type) {
    case 'addVoter':
      voters.push(cc.node);
      break;
    case 'addLearner':
      // Also demotes a voter; refused if it was the only one.
      if (voters.length === 0) return conf;
      learners.push(cc.node);
      break;
    case 'removeNode':
      if (voters.length === 0) return conf;
      break;
  }
  return { voters: voters.sort(), learners: learners.sort() };
}

export function confEquals(a: ConfState, b: ConfState): boolean {
  const s = (x: readonly string[]) => [...x].sort().join('\u0000');
  return s(a.voters) === s(b.voters) && s(a.learners) === s(b.learners);
}
