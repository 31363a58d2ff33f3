// node-score's keys, defaults and their parsing (the picker is ./node-score.ts).
import { configObject, numberKey } from './config.js';

export interface NodeScoreConfig {
  /** Stretch of the expected service time per occupied fraction of the slots. */
  readonly load: number;
  /** Stretch at full cpu and at full memory use. */
  readonly cpu: number;
  readonly memory: number;
  /** Floor of the success rate in the 1/p retry factor. */
  readonly minSuccess: number;
  /** Service time assumed when no agent has latency data yet. */
  readonly latencyRefMs: number;
  /** Longest a task is held back for a faster agent's slot (./hold-back.ts); 0: never held. */
  readonly maxHoldMs: number;
}

export const NODE_SCORE_DEFAULTS: NodeScoreConfig = {
  load: 1,
  cpu: 0.2,
  memory: 0.2,
  minSuccess: 0.05,
  latencyRefMs: 100,
  maxHoldMs: 500,
};

/** An agent without latency data is assumed this fraction of the fastest measured one. */
export const UNMEASURED_SPEEDUP = 0.9;

export function parseNodeScoreConfig(raw: unknown): NodeScoreConfig {
  const n = 'node-score';
  const o = configObject(n, raw, Object.keys(NODE_SCORE_DEFAULTS));
  const d = NODE_SCORE_DEFAULTS;
  return {
    load: numberKey(n, o, 'load', d.load, { min: 0 }),
    cpu: numberKey(n, o, 'cpu', d.cpu, { min: 0 }),
    memory: numberKey(n, o, 'memory', d.memory, { min: 0 }),
    minSuccess: numberKey(n, o, 'minSuccess', d.minSuccess, { min: 1e-3, max: 1 }),
    latencyRefMs: numberKey(n, o, 'latencyRefMs', d.latencyRefMs, { min: 1e-3 }),
    maxHoldMs: numberKey(n, o, 'maxHoldMs', d.maxHoldMs, { min: 0 }),
  };
}
