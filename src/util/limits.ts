// Bounds on everything a caller can send, in one place (docs/operations.md,
// "Limits", lists them; keep both true). A caller is anyone who reaches a
// port: clients, agents, child cells, operators, probes.
//
// Why: an unbounded string is echoed into a status message and a log line.
// grpc-js sends the status message as an HTTP/2 trailer, and a trailer block
// over the peer's header-list limit (about 64 KB) is never delivered, so the
// call hangs until the client's deadline: a 100 KB task id did that to Get.
// So every field is checked against its limit BEFORE any lookup or forward,
// answered INVALID_ARGUMENT naming the field and the limit, and caller input
// goes into messages and logs only through clip().
//
// Lengths of strings are in UTF-16 code units (JavaScript's `length`), which
// for ASCII is bytes. Every limit is far above what the mesh itself makes
// (task ids are about 20 characters; cell paths at most 100).
// checkLength (errors.ts) throws the INVALID_ARGUMENT for one field.

export const LIMITS = {
  /** Get, Watch, Cancel: task ids (the mesh makes ids of about 20 characters). */
  taskId: 128,
  /** TaskSpec.idempotency_key. */
  idempotencyKey: 256,
  /** TaskSpec.kind, and each kind an agent declares. */
  kind: 128,
  /** TaskSpec.tenant. */
  tenant: 128,
  /** TaskSpec.context_key (a session id, a conversation, a prompt-prefix hash). */
  contextKey: 256,
  /** Label keys (task labels and affinity, agent labels). */
  labelKey: 128,
  /** Label values. */
  labelValue: 256,
  /** TaskSpec.labels and TaskSpec.affinity, each. */
  labelsPerTask: 64,
  /** TaskSpec.trace_parent (a W3C traceparent is 55 characters; later versions may add fields). */
  traceParent: 256,
  /** TaskSpec.trace_state (W3C: at most 32 entries, and 512 characters must always be passed on). */
  traceState: 512,
  /** Cancel and DrainAgent reasons. */
  reason: 1024,
  /** AgentHello.agent_id, DrainAgent.agent_id. */
  agentId: 256,
  /** AgentHello.version. */
  agentVersion: 128,
  /** AgentHello.kinds. */
  kindsPerAgent: 256,
  /** AgentHello.labels. */
  labelsPerAgent: 64,
  /** Cell paths: hellos, GetCell (a topology allows at most 3 segments of 32). */
  cellPath: 256,
  /** Replica ids and numbers: hellos, TransferLeader, AddReplica, RemoveReplica. */
  replicaId: 300,
  /** AddReplica.address. */
  address: 256,
  /** Mesh name and mesh id in hellos (a topology allows 52 and 64). */
  meshName: 128,
  /** grpc.health.v1 service names. */
  healthService: 256,
  /** Reflection file names and symbols. */
  reflectionName: 1024,
  /** Specs per SubmitBatch. */
  tasksPerBatch: 10_000,
  /** Submissions a SubmitStream may have unanswered before it is cut off. */
  streamInFlight: 10_000,
  /** Attempts a link hello may name (more are ignored). */
  holdingPerHello: 50_000,
  /** Open Watch streams on one task, and on one replica. */
  watchersPerTask: 1_000,
  watchersPerReplica: 100_000,
  /** Task ids one WatchMany stream watches at once (they count against watchersPerReplica too). */
  watchManyIdsPerStream: 10_000,
  /** Open health Watch streams per replica. */
  healthWatchers: 10_000,
  /** Agent sessions (and hellos awaited) per node replica. */
  agentsPerNode: 20_000,
  /** AdminService list pages (ListTasks, ListDeadLetters; default 100). */
  adminPageSize: 1000,
  /** AdminService page tokens (the mesh makes tokens of about 40 characters). */
  pageToken: 512,
  /** Tasks per ReplayDeadLetters call (ids given, or `all` up to this many). */
  replayPerCall: 1000,
  /** SetPolicy policy name and tier. */
  policyName: 64,
  /** SetPolicy config_json (a policy config is a few weights). */
  policyConfigJson: 16_384,
  /** Caller input quoted in a status message or a log line. */
  echo: 200,
  /** Any status message the mesh sends (the trailer must reach the caller). */
  statusMessage: 1024,
} as const;

/** Caller input in an error or a log line: quoted, and at most `max` characters of it, then a marker. */
export function clip(s: string, max: number = LIMITS.echo): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** A message cut to `max` characters, with a marker saying how much was dropped; never inside a surrogate pair. */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  const marker = (n: number): string => `… (${n} more characters)`;
  let keep = Math.max(0, max - marker(s.length).length);
  if (keep > 0 && isHighSurrogate(s.charCodeAt(keep - 1))) keep--;
  return s.slice(0, keep) + marker(s.length - keep);
}

const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `s` with every lone surrogate replaced by U+FFFD. A status message travels URI-encoded in a
 * trailer, and encodeURI throws on a lone surrogate (in grpc-js's server that throw is uncaught:
 * the process dies). They come from V8's own messages (JSON.parse names the UTF-16 unit it
 * choked on, half of an emoji) and from any cut of caller input.
 */
export function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

/** Why `value` is over `max`, or '' when it fits. `field` names it as in the proto (`task.tenant`). */
export function overLimit(field: string, value: string, max: number): string {
  return value.length > max ? `${field} is ${value.length} characters, over the limit of ${max}` : '';
}

/** Why a repeated field is over `max` items, or '' when it fits. */
export function overCount(field: string, count: number, max: number): string {
  return count > max ? `${field} has ${count} items, over the limit of ${max}` : '';
}
