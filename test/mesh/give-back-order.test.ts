// A child gives back (work stealing) only attempts its parent has seen acked.
// The child holds accepted acks until its next summary (summary-pacer.ts); a
// give-back written before that ack let the parent place the same attempt
// again while its first dispatch still awaited the ack, and the second ack
// never came: the parent's link counted a slot unacked for good (sim:mesh seed
// 56 --no-raft, the `credits` check). A real node Cell and ParentLink over a
// fake stream: what the child writes, in order.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { OpenRequest, OpenResponse } from '../../src/gen/meshlb/v1/link.js';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import { meshOf } from '../../src/mesh/mesh-identity.js';
import { ParentLink, type DialedLink } from '../../src/mesh/parent-link.js';
import { VersionRamps } from '../../src/mesh/version-ramps.js';
import { makeCandidate } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';

const TOPO = parseTopology(`
name: giveback
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: /, children: [{ name: n }] }
`);

/** One agent of kind k, busy: whatever the parent sends waits in the node's queue. */
class BusyAgents {
  readonly versions = new VersionRamps();
  candidates() {
    return [makeCandidate({ id: 'a', slots: { k: [0, 1] } })];
  }
  load() {
    return { capacity: new Map(), healthyAgents: 1, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 };
  }
  assign() {}
  cancel() {}
  sweep() {}
  closeAll() {}
  all() {
    return [];
  }
}

class FakeCall extends EventEmitter {
  readonly written: OpenRequest[] = [];
  write(m: OpenRequest, cb?: () => void): boolean {
    this.written.push(m);
    cb?.();
    return true;
  }
  end(): void {}
  cancel(): void {}
}

describe('work stealing at the child', () => {
  it('writes the ack of an attempt before it gives the attempt back', async () => {
    const cell = new Cell(TOPO, TOPO.byPath.get('/n')!, 1, { seed: 3, tickMs: 10 });
    const call = new FakeCall();
    const dial = (): DialedLink => ({ call: call as unknown as DialedLink['call'], close: () => undefined });
    const parent = new ParentLink(cell, cell.summaries, () => ['127.0.0.1:1'], meshOf(TOPO), dial);
    cell.attach({ agents: new BusyAgents() as unknown as AgentSessions, parent });
    cell.start();
    const turns = async () => {
      for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
    };
    const from = (m: OpenResponse['msg']) => call.emit('data', { msg: m } as OpenResponse);
    const w = { replicaId: '/#1', leader: true, leaderId: '/#1', parentCell: '/', mesh: TOPO.name, meshId: '' };
    from({ $case: 'welcome', value: { ...w, meshId: meshOf(TOPO).id } });
    await turns();
    const spec = TaskSpec.fromPartial({ kind: 'k', timeoutMs: 1000 });
    from({
      $case: 'dispatches',
      value: {
        tasks: [
          {
            taskId: 't1',
            attempt: 1,
            homeCell: '/',
            spec,
            leaseMs: 5000,
            traceParent: '',
            checkpoint: undefined,
            guaranteed: false,
            send: 0,
          },
        ],
      },
    });
    // Same turn as the dispatch, before any summary could go: a sibling is idle, the parent asks.
    from({ $case: 'steal', value: { kinds: [{ kind: 'k', max: 4 }] } });
    await turns();
    const order = call.written.flatMap((m) =>
      m.msg?.$case === 'acks'
        ? m.msg.value.acks.map((a) => `ack ${a.taskId}#${a.attempt} ${a.accepted}`)
        : m.msg?.$case === 'givenBack'
          ? m.msg.value.refs.map((r) => `givenBack ${r.taskId}#${r.attempt}`)
          : [],
    );
    expect(order).toEqual(['ack t1#1 true', 'givenBack t1#1']);
    cell.close();
    parent.stop();
  });
});
