// A new leader counts an attempt no child claims as a lost attempt: it was
// dispatched under the old leader, so it may have run (and its result may
// have died with the old leader's links). Found by the mesh simulator
// (npm run sim:mesh, seed 68): a task with max_attempts 1 ran on an agent,
// its home cell changed leader, the new leader retried it without counting,
// and it ran a second time.
import { describe, expect, it } from 'vitest';
import { Durability, TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { Cell } from '../../src/mesh/cell.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { parseTopology } from '../../src/topology/parse.js';

const TOPO = parseTopology(`
name: unit
tiers: { global: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);

describe('a new leader reconciling attempts out under the old one', () => {
  it('spends an attempt on one no child claims: max_attempts 1 ends the task, never a second run', async () => {
    const vs = new VirtualScheduler(1_000_000);
    const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, { scheduler: vs, seed: 1, linkTimeoutMs: 1000 });
    cell.start();
    // The ledger as the old leader left it: the task accepted and its attempt 1 dispatched.
    const spec = TaskSpec.fromPartial({ kind: 'k', maxAttempts: 1, durability: Durability.DURABILITY_NONE });
    const [acc] = cell.ledger.apply({ type: 'accepted', tasks: [{ id: 't1', spec, homeCell: '/', atMs: vs.now() }] });
    expect(acc!.ok).toBe(true);
    cell.ledger.apply({ type: 'dispatched', refs: [{ id: 't1', attempt: 1 }], atMs: vs.now() });
    // This replica takes over: the attempt is out, nobody claims it within two link timeouts.
    expect(cell.home.recovery.resume()).toEqual({ queued: 0, out: 1 });
    vs.advance(2500);
    const rec = cell.ledger.get('t1')!;
    expect(rec.attempt).toBe(1);
    expect(rec.state).toBe(TaskState.TASK_STATE_DEAD_LETTERED);
    expect(rec.reason).toMatch(/no child held it/);
    cell.close();
  });
});
