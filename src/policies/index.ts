// Public entry of the routing policies. Importing this module registers every
// policy; the cell then creates one by name from its config.

import './global-geo.js';
import './region-wrr.js';
import './zone-least-conn.js';
import './node-score.js';
import './baseline-random.js';
import './round-robin.js';
import './p2c.js';
import './least-loaded.js';

export type {
  Candidate,
  ContextLookup,
  KindLabels,
  KindSlots,
  Label,
  LabelGroupInfo,
  Picker,
  PickResult,
  Policy,
  PolicyDeps,
  PolicyFactory,
  Explanation,
  ExplainSink,
  Priority,
  RejectCode,
  ScoredCandidate,
  ScoreRule,
  TaskInfo,
  Tier,
  Utilization,
} from './types.js';
export {
  registerPolicy,
  getPolicy,
  listPolicies,
  createPolicy,
  validatePolicyConfig,
  DEFAULT_POLICY_BY_TIER,
} from './registry.js';
export { PolicyConfigError } from './config.js';
export { explanationOf, madeUnder } from './explain.js';
export { BasePicker, KindView, SPILL_NO_AFFINITY } from './picker.js';
export { AffinityMatch, kindMayMatch, matchingRoom } from './affinity.js';
export { QUEUE_HELD, HOLD_GAIN, HOLD_SCAN, holdForAnswer, holdForFaster, mayHold, type Faster } from './hold-back.js';
export { makeCandidate, type CandidateInit } from './candidate.js';
export { CompletionCurve, speedGroups, SPEED_GROUPS, type AgentFigures, type SpeedGroups } from './completion.js';
export { seededRandom } from '../util/rng.js';
export { globalGeoPolicy, GLOBAL_GEO_DEFAULT_WEIGHTS, type GlobalGeoConfig } from './global-geo.js';
export { regionWrrPolicy, reportedWeight, type RegionWrrConfig } from './region-wrr.js';
export { zoneLeastConnPolicy, type ZoneLeastConnConfig } from './zone-least-conn.js';
export { nodeScorePolicy, NODE_SCORE_DEFAULTS, UNMEASURED_SPEEDUP, type NodeScoreConfig } from './node-score.js';
export { randomPolicy } from './baseline-random.js';
export { roundRobinPolicy } from './round-robin.js';
export { p2cPolicy } from './p2c.js';
export { leastLoadedPolicy } from './least-loaded.js';
export {
  Breaker,
  Breakers,
  BREAKER_DEFAULTS,
  parseBreakerConfig,
  type BreakerConfig,
  type BreakerCounts,
  type BreakerInfo,
  type BreakerState,
} from './breaker.js';
