// Version ramps through the admin API (docs/flow-control.md, "Version
// ramps"). A ramp is a node cell's: its agents are there, and so is the
// placement that follows it (src/mesh/version-ramps.ts). SetVersionRamp
// commits it to one node cell's log, or to every node cell's (each at its
// leader, errors per cell); GetVersionRamp shows each version of the kind at
// one node cell, or at every one with the sums over all of them (cell "").
import { status, type Metadata } from '@grpc/grpc-js';
import type {
  GetVersionRampRequest,
  GetVersionRampResponse,
  SetVersionRampRequest,
  SetVersionRampResponse,
  VersionRampResult,
  VersionRampStatus,
  VersionShare,
} from '../gen/meshlb/v1/admin.js';
import type { Cell } from '../mesh/cell.js';
import { MAX_RAMPS } from '../mesh/ledger-record.js';
import { retire } from '../mesh/version-ramps.js';
import { checkLength, invalidArgument, MeshError, toServiceError } from '../util/errors.js';
import { LIMITS } from '../util/limits.js';
import { isForwarded } from '../mesh/task-forward.js';
import { commit, replicated } from './admin-tasks.js';
import { msLeft, type AdminMethod, type RequestOf, type ResponseOf } from './admin-route.js';

/** AdminService's routed(): `method` at the leader of the cell `named` (admin-service.ts). */
type Routed = <M extends AdminMethod>(
  method: M,
  named: string,
  req: RequestOf<M>,
  deadlineMs: number,
  forwarded: boolean,
  local: (target: string) => ResponseOf<M> | Promise<ResponseOf<M>>,
) => Promise<ResponseOf<M>>;

interface CallOf<Req> {
  readonly request: Req;
  readonly metadata: Metadata;
  getDeadline(): Date | number;
}

/** SetVersionRamp: one node cell (at its leader), or every node cell (each at its leader). */
export function setVersionRamp(
  cell: Cell,
  req: SetVersionRampRequest,
  call: CallOf<SetVersionRampRequest>,
  routed: Routed,
): Promise<SetVersionRampResponse> {
  checkRamp(req);
  const [deadline, fwd] = [msLeft(call.getDeadline()), isForwarded(call.metadata)];
  const one = (path: string): Promise<SetVersionRampResponse> =>
    routed('setVersionRamp', path, { ...req, cell: path }, deadline, fwd, () => setRampHere(cell, req));
  return req.cell ? one(req.cell) : setRampEverywhere(cell, one);
}

/** GetVersionRamp: one node cell, or every node cell with the sums over them. */
export function getVersionRamp(
  cell: Cell,
  req: GetVersionRampRequest,
  call: CallOf<GetVersionRampRequest>,
  routed: Routed,
): Promise<GetVersionRampResponse> {
  const [deadline, fwd] = [msLeft(call.getDeadline()), isForwarded(call.metadata)];
  const one = (path: string): Promise<GetVersionRampResponse> =>
    routed('getVersionRamp', path, { ...req, cell: path }, deadline, fwd, () => rampsHere(cell, req.kind));
  return req.cell ? one(req.cell) : rampsEverywhere(cell, one);
}

/** The request's own checks, before it is routed anywhere. */
export function checkRamp(req: SetVersionRampRequest): void {
  if (!req.kind) throw invalidArgument('kind is required');
  checkLength('kind', req.kind, LIMITS.kind);
  checkLength('version', req.version, LIMITS.agentVersion);
  if (req.reset) {
    if (req.version || req.percent) throw invalidArgument('reset takes no version or percent');
  } else {
    if (!req.version) throw invalidArgument('version is required (or reset, to remove the ramp)');
    if (!(req.percent >= 0 && req.percent <= 100)) throw invalidArgument('percent must be from 0 to 100');
  }
}

function nodeOnly(cell: Cell): NonNullable<Cell['agents']> {
  if (cell.agents) return cell.agents;
  throw new MeshError(
    status.FAILED_PRECONDITION,
    `cell ${cell.path} is a ${cell.tier} cell; version ramps are set at node cells (empty cell: every one)`,
  );
}

/** SetVersionRamp at this node cell (its leader answers): committed to its log. */
export async function setRampHere(cell: Cell, req: SetVersionRampRequest): Promise<SetVersionRampResponse> {
  nodeOnly(cell);
  cell.home.mustLead();
  const version = req.reset ? '' : req.version;
  const percent = req.reset ? 0 : req.percent;
  const cmd = { type: 'versionRampSet' as const, kind: req.kind, version, percent, atMs: cell.scheduler.now() };
  const [r] = await commit(cell, cmd, true);
  if (r && !r.ok) throw new MeshError(status.RESOURCE_EXHAUSTED, `cell ${cell.path} holds ${MAX_RAMPS} ramps`);
  cell.log.info({ kind: req.kind, version, percent }, 'version ramp set');
  return { cells: [{ cell: cell.path, replicated: replicated(cell), error: '' }] };
}

/** SetVersionRamp at every node cell: `one` routes it to each; a cell that refuses says why. */
export async function setRampEverywhere(
  cell: Cell,
  one: (path: string) => Promise<SetVersionRampResponse>,
): Promise<SetVersionRampResponse> {
  const cells = await Promise.all(
    nodeCells(cell).map(async (path): Promise<VersionRampResult> => {
      try {
        return (await one(path)).cells[0] ?? { cell: path, replicated: false, error: 'no answer' };
      } catch (err) {
        const se = toServiceError(err);
        return { cell: path, replicated: false, error: `${status[se.code!]}: ${se.details}` };
      }
    }),
  );
  return { cells };
}

/** GetVersionRamp at this node cell: each ramped kind (or `kind`) and its versions here. */
export function rampsHere(cell: Cell, kind: string): GetVersionRampResponse {
  const agents = nodeOnly(cell);
  checkLength('kind', kind, LIMITS.kind);
  const v = agents.versions;
  const ramps = (kind ? [kind] : v.kinds()).map((k): VersionRampStatus => {
    const r = v.get(k);
    const versions = v.shares(k, agents.byId.values()).map((s) => ({ ...s }));
    return { cell: cell.path, kind: k, version: r?.version ?? '', percent: r?.percent ?? 0, versions };
  });
  return { ramps, errors: [] };
}

/** GetVersionRamp at every node cell, and per kind the sums over them (cell ""). */
export async function rampsEverywhere(
  cell: Cell,
  one: (path: string) => Promise<GetVersionRampResponse>,
): Promise<GetVersionRampResponse> {
  const errors: string[] = [];
  const per = await Promise.all(
    nodeCells(cell).map((path) =>
      one(path).catch((err: unknown) => {
        const se = toServiceError(err);
        errors.push(`${path}: ${status[se.code!]}: ${se.details}`);
        return { ramps: [], errors: [] };
      }),
    ),
  );
  const ramps = per.flatMap((r) => r.ramps);
  return { ramps: [...sums(ramps), ...ramps], errors };
}

/** Per kind, the versions summed over the node cells (a node's ramp may differ: the first one's is shown). */
function sums(ramps: readonly VersionRampStatus[]): VersionRampStatus[] {
  const out = new Map<string, VersionRampStatus>();
  for (const r of ramps) {
    let t = out.get(r.kind);
    if (!t) out.set(r.kind, (t = { cell: '', kind: r.kind, version: r.version, percent: r.percent, versions: [] }));
    for (const v of r.versions) {
      let s = t.versions.find((x) => x.version === v.version);
      if (!s) t.versions.push((s = { ...v, agents: 0, inFlight: 0, state: 'serving' }));
      s.agents += v.agents;
      s.inFlight += v.inFlight;
    }
  }
  for (const t of out.values()) {
    for (const s of t.versions) s.ramped = s.version === t.version;
    if (t.version && t.percent >= 100) t.versions = t.versions.map((s) => retire(shareInfo(s)));
  }
  return [...out.values()];
}

const shareInfo = (s: VersionShare) => ({ ...s, state: s.state as 'serving' | 'draining' | 'drained' });

const nodeCells = (cell: Cell): string[] => cell.topology.cells.filter((c) => c.tier === 'node').map((c) => c.path);
