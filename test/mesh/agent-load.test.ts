// A node's agents' loads (AgentSessions, `load` messages), on virtual time: a
// load moves the node's capacity only when the agent starts draining, and
// reaches the live picker in place (no rebuild); a cordoned agent's loads
// never make the picker rebuild.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { AgentHello, type ConnectRequest, type ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';
import { Durability, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import { meshOf } from '../../src/mesh/mesh-identity.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';

/** A node cell with `n` agents of one slot each (a0, a1, ...), and what each was assigned. */
function node(n: number) {
  const topo = parseTopology(chainTopologyYaml({ name: 'loads', nodes: ['n'], basePort: 7960 }));
  const spec = topo.byPath.get('/r/z/n')!;
  const vs = new VirtualScheduler(1_000_000);
  const cell = new Cell(topo, spec, 1, { scheduler: vs, seed: 1, log: pino({ level: 'silent' }) });
  const sessions = new AgentSessions(cell, meshOf(topo));
  cell.attach({ agents: sessions });
  cell.start();
  const assigned: string[] = [];
  const calls: EventEmitter[] = [];
  const send = (i: number, msg: ConnectRequest['msg']): void => void calls[i]!.emit('data', { msg });
  for (let i = 0; i < n; i++) {
    const call = new EventEmitter() as EventEmitter & Record<string, unknown>;
    call.write = (m: ConnectResponse, cb?: () => void) => {
      if (m.msg?.$case === 'assignments') for (const t of m.msg.value.tasks) assigned.push(`a${i}:${t.taskId}`);
      cb?.();
      return true;
    };
    call.end = () => undefined;
    call.getPeer = () => `agent-${i}`;
    calls[i] = call;
    sessions.connect(call as never);
    send(i, {
      $case: 'hello',
      value: AgentHello.fromPartial({
        agentId: `a${i}`,
        kinds: ['k'],
        slots: 1,
        mesh: topo.name,
        meshId: meshOf(topo).id,
        nodeCell: spec.path,
      }),
    });
  }
  const load = (i: number, cpu: number, draining = false): void =>
    send(i, { $case: 'load', value: { cpu, memory: 0.5, gpu: 0, inFlight: 0, draining } });
  const settle = (): void => {
    for (let k = 0; k < 5; k++) {
      vs.runDeferred();
      vs.advance(1);
    }
  };
  /** Submit one task and let it be placed: the agent it went to. */
  const place = async (): Promise<string> => {
    const before = assigned.length;
    await cell.submit([TaskSpec.fromPartial({ kind: 'k', durability: Durability.DURABILITY_NONE, timeoutMs: 30_000 })]);
    settle();
    expect(assigned.length).toBe(before + 1);
    return assigned[assigned.length - 1]!.split(':')[0]!;
  };
  const capacity = () => sessions.load().capacity.get('k');
  return { cell, sessions, load, settle, place, capacity };
}

describe('agent loads at a node', () => {
  it('reach the live picker in place, changed or not, with no rebuild', async () => {
    const n = node(3);
    // a0 and a1 busy at full cpu, a2 idle: the picker scores a2 best.
    n.load(0, 1);
    n.load(1, 1);
    n.load(2, 0);
    n.settle();
    expect(await n.place()).toBe('a2'); // builds the picker (a2 now holds its only slot)
    const rebuilds = n.cell.dispatcher.rebuilds;
    // Now a1 reports idle, a0 still full: a1 wins, taken without a rebuild.
    n.load(1, 0);
    n.load(0, 1);
    n.settle();
    expect(await n.place()).toBe('a1');
    // Unchanged figures: nothing is rebuilt either.
    for (let k = 0; k < 5; k++) n.load(0, 1);
    n.settle();
    expect(await n.place()).toBe('a0');
    expect(n.cell.dispatcher.rebuilds).toBe(rebuilds);
    // Capacity counted each placement once, whatever the loads in between.
    expect(n.capacity()).toEqual({ free: 0, total: 3, healthy: 3 });
  });

  it('move capacity once when the agent starts draining, not at every draining load', async () => {
    const n = node(2);
    n.load(0, 0.2);
    n.load(1, 0.2);
    expect(n.capacity()).toEqual({ free: 2, total: 2, healthy: 2 });
    n.load(0, 0.2, true);
    expect(n.capacity()).toEqual({ free: 1, total: 2, healthy: 2 });
    expect(n.sessions.byId.get('a0')!.draining).toBe(true);
    expect(await n.place()).toBe('a1'); // the picker is rebuilt without a0
    const rebuilds = n.cell.dispatcher.rebuilds;
    for (let k = 0; k < 3; k++) n.load(0, 0.3, true);
    // A task that must wait (no free slot) still pumps: the picker stands as it was.
    await n.cell.submit([TaskSpec.fromPartial({ kind: 'k', durability: Durability.DURABILITY_NONE })]);
    n.settle();
    expect(n.capacity()).toEqual({ free: 0, total: 2, healthy: 2 });
    expect(n.cell.dispatcher.rebuilds).toBe(rebuilds);
  });

  it('of a cordoned agent do not make the picker rebuild, and its draining load still counts after the cordon', async () => {
    const n = node(2);
    n.load(0, 0);
    n.load(1, 0);
    n.settle();
    n.sessions.setCordoned(new Set(['a0']));
    expect(await n.place()).toBe('a1');
    const rebuilds = n.cell.dispatcher.rebuilds;
    n.load(0, 0.7);
    n.load(0, 0.9);
    n.settle();
    await n.cell.submit([TaskSpec.fromPartial({ kind: 'k', durability: Durability.DURABILITY_NONE })]);
    n.settle();
    expect(n.cell.dispatcher.rebuilds).toBe(rebuilds);
    // It says it drains while cordoned: lifting the cordon leaves it draining.
    n.load(0, 0.9, true);
    n.sessions.setCordoned(new Set());
    expect(n.sessions.byId.get('a0')!.draining).toBe(true);
    expect(n.capacity()).toEqual({ free: 0, total: 2, healthy: 2 });
  });
});
