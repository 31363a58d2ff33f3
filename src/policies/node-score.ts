// Node tier: resource scoring of agents (seed 002's node balancer). Each
// eligible agent gets
//   score = w.availability·(credits/total) + w.success·successEwma
//         + w.speed·ref/(ref + latencyEwmaMs) + w.cpu·(1 − cpu) + w.memory·(1 − memory)
// and the highest score wins (random tie-break). Only availability changes
// between picks, so the rest is computed once per picker.

import { configObject, numberKey, weightKeys } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory } from './types.js';

export interface NodeScoreWeights {
  readonly availability: number;
  readonly success: number;
  readonly speed: number;
  readonly cpu: number;
  readonly memory: number;
}

export interface NodeScoreConfig {
  readonly weights: NodeScoreWeights;
  /** Latency at which the speed term is 0.5; an agent with no data scores 1. */
  readonly latencyRefMs: number;
}

export const NODE_SCORE_DEFAULT_WEIGHTS: NodeScoreWeights = {
  availability: 0.35,
  success: 0.25,
  speed: 0.2,
  cpu: 0.1,
  memory: 0.1,
};

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

class NodeScorePicker extends BasePicker {
  /** Score part that does not change between picks, by candidate index. */
  private readonly staticPart: Float64Array;
  private readonly score: (v: KindView, pos: number) => number;

  constructor(cands: readonly Candidate[], random: () => number, cfg: NodeScoreConfig) {
    super(cands, random);
    const w = cfg.weights;
    this.staticPart = Float64Array.from(cands, (c) => {
      const lat = Math.max(0, c.latencyEwmaMs);
      return (
        w.success * clamp01(c.successEwma) +
        w.speed * (cfg.latencyRefMs / (cfg.latencyRefMs + lat)) +
        w.cpu * (1 - clamp01(c.utilization.cpu)) +
        w.memory * (1 - clamp01(c.utilization.memory))
      );
    });
    // selectMin minimises, so negate.
    this.score = (v, pos) =>
      -(w.availability * (this.avail(v, pos) / v.total[pos]!) + this.staticPart[v.members[pos]!]!);
  }

  protected select(v: KindView): number {
    return this.selectMin(v, this.score);
  }
}

export const nodeScorePolicy: PolicyFactory<NodeScoreConfig> = {
  name: 'node-score',
  description: 'weighted score of availability, success rate, speed, cpu and memory (node tier)',
  parseConfig(raw) {
    const o = configObject('node-score', raw, [...Object.keys(NODE_SCORE_DEFAULT_WEIGHTS), 'latencyRefMs']);
    return {
      weights: weightKeys('node-score', o, NODE_SCORE_DEFAULT_WEIGHTS),
      latencyRefMs: numberKey('node-score', o, 'latencyRefMs', 100, { min: 1e-3 }),
    };
  },
  create(config, deps: PolicyDeps): Policy {
    return {
      name: 'node-score',
      buildPicker: (cands: readonly Candidate[]): Picker => new NodeScorePicker(cands, deps.random, config),
    };
  },
};

registerPolicy('node-score', nodeScorePolicy);
