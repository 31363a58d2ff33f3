// The live picker's updates (src/mesh/dispatcher-updates.ts): an agent's new
// figures reach the picker, except while a home start routed to it has not
// been sent yet (its slot is taken in the picker, not yet in the session: an
// update then would offer that slot twice), and a start never sent stops
// holding updates back after STARTING_GRACE_MS.
import { describe, expect, it } from 'vitest';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { AgentUpdates, STARTING_GRACE_MS } from '../../src/mesh/dispatcher-updates.js';
import { FROM_HOME, makeItem, type WorkItem } from '../../src/mesh/types.js';
import { createPolicy, makeCandidate, seededRandom, type Candidate } from '../../src/policies/index.js';

const item = (id: string): WorkItem =>
  makeItem(id, 0, '/n', TaskSpec.fromPartial({ kind: 'k' }), FROM_HOME, undefined, `${id}#0`, 1000, undefined, 0);

const agent = (free: number, latencyEwmaMs = 0): Candidate =>
  makeCandidate({ id: 'a', slots: { k: [free, 2] }, latencyEwmaMs });

describe('AgentUpdates', () => {
  it('holds an agent’s update back while a home start routed to it is unsent, so its slot is not offered twice', () => {
    const picker = createPolicy('node-score', undefined, { random: seededRandom(1) }).buildPicker([agent(2)], 0);
    const u = new AgentUpdates();
    let truth = agent(2); // the session: nothing assigned yet
    expect(picker.pick({ kind: 'k', priority: 'normal' })).toMatchObject({ type: 'route', candidate: 'a' });
    const start = item('t1');
    u.routed(start, 'a', 0);
    // A load arrives while the start's `dispatched` command commits: the session still shows 2 free.
    u.changed('a');
    expect(u.apply(picker, () => truth, 10)).toBe(true);
    expect(picker.credits('k')).toBe(1); // not 2: the taken slot stays taken
    expect(u.pending).toBe(true);
    // Sent: the session holds it now, and the update goes through.
    u.sent(start, 'a');
    truth = agent(1, 5);
    expect(u.apply(picker, () => truth, 20)).toBe(true);
    expect(picker.credits('k')).toBe(1);
    expect(u.pending).toBe(false);
  });

  it('a start never sent (the ledger refused it) holds updates back only for the grace period', () => {
    const picker = createPolicy('node-score', undefined, { random: seededRandom(1) }).buildPicker([agent(2)], 0);
    const u = new AgentUpdates();
    picker.pick({ kind: 'k', priority: 'normal' });
    u.routed(item('t1'), 'a', 0);
    u.changed('a');
    expect(u.apply(picker, () => agent(2), STARTING_GRACE_MS - 1)).toBe(true);
    expect(picker.credits('k')).toBe(1);
    expect(u.apply(picker, () => agent(2), STARTING_GRACE_MS)).toBe(true);
    expect(picker.credits('k')).toBe(2); // the credit the refused start took comes back
  });

  it('asks for a rebuild when the picker cannot take an agent in place, or the agent is gone', () => {
    const picker = createPolicy('node-score', undefined, { random: seededRandom(1) }).buildPicker([agent(2)], 0);
    const u = new AgentUpdates();
    u.changed('b');
    expect(u.apply(picker, () => makeCandidate({ id: 'b', slots: { k: [1, 1] } }), 0)).toBe(false);
    u.clear();
    u.changed('a');
    expect(u.apply(picker, () => undefined, 0)).toBe(false);
  });
});
