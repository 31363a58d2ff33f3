// MemoryNetwork's clock and faults, on fake endpoints: deliveries go through
// the clock only (never inside send), link cuts stop both directions of one
// pair, and drop/duplicate/delay do what they say, the same way for a seed.
import { describe, expect, it } from 'vitest';
import {
  MemoryNetwork,
  type Message,
  type MemoryNetworkOptions,
  type NodeId,
  type RaftEndpoint,
  type ReplicaStatus,
} from '../../../src/raft/index.js';
import { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';
import { seededRandom } from '../../../src/util/rng.js';

/** A fake replica that writes down everything the network does to it. */
function endpoint(id: NodeId, events: string[]): RaftEndpoint {
  return {
    groupId: 'g',
    id,
    deliver: (msgs) => events.push(`${id} got ${msgs.map((m) => `${m.type}:${m.from}#${m.term}`).join(',')}`),
    reportUnreachable: (peer) => events.push(`${id} unreachable ${peer}`),
    reportSnapshot: (peer, ok) => events.push(`${id} snapshot to ${peer} ${ok ? 'ok' : 'failed'}`),
    status: () => ({ id }) as ReplicaStatus,
  };
}

function msg(from: NodeId, to: NodeId, term: number, type: Message['type'] = 'app'): Message {
  return { type, from, to, term } as Message;
}

function network(opts: MemoryNetworkOptions = {}) {
  const clock = new VirtualScheduler();
  const net = new MemoryNetwork({ clock, ...opts });
  const events: string[] = [];
  const t = Object.fromEntries(
    ['a', 'b', 'c'].map((id) => {
      const tr = net.transport(id);
      tr.start(endpoint(id, events));
      return [id, tr];
    }),
  );
  return { clock, net, events, t };
}

describe('MemoryNetwork', () => {
  it('with no clock delivers on a later real turn, as before', async () => {
    const net = new MemoryNetwork();
    const events: string[] = [];
    net.transport('a').start(endpoint('a', events));
    net.transport('b').start(endpoint('b', events));
    net.transport('a').send('b', [msg('a', 'b', 1)]);
    expect(events).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['b got app:a#1']);
  });

  it('delivers only when its clock runs deferred work, never inside send', () => {
    const { clock, events, t } = network();
    t.a!.send('b', [msg('a', 'b', 1), msg('a', 'b', 2)]);
    expect(events).toEqual([]);
    clock.runDeferred();
    expect(events).toEqual(['b got app:a#1,app:a#2']);
  });

  it('cut(a, b) stops that link both ways and no other; heal(a, b) restores it; cut(a) isolates a', () => {
    const { clock, net, events, t } = network();
    net.cut('a', 'b');
    t.a!.send('b', [msg('a', 'b', 1)]);
    t.b!.send('a', [msg('b', 'a', 1)]);
    t.a!.send('c', [msg('a', 'c', 1)]);
    t.c!.send('b', [msg('c', 'b', 1)]);
    clock.runDeferred();
    expect(events).toEqual(['a unreachable b', 'b unreachable a', 'c got app:a#1', 'b got app:c#1']);
    events.length = 0;
    net.heal('a', 'b');
    net.cut('c');
    t.a!.send('b', [msg('a', 'b', 2)]);
    t.a!.send('c', [msg('a', 'c', 2, 'snap')]);
    clock.runDeferred();
    expect(events).toEqual(['b got app:a#2', 'a unreachable c', 'a snapshot to c failed']);
    net.healAll();
    expect(net.isCut('a', 'c')).toBe(false);
  });

  it('delays each batch within its range on the clock, so later sends may overtake earlier ones', () => {
    const { clock, events, t } = network({ random: seededRandom(1), faults: { delayMs: [10, 50] } });
    for (let i = 1; i <= 8; i++) t.a!.send('b', [msg('a', 'b', i)]);
    clock.advance(9);
    expect(events).toEqual([]);
    clock.advance(41);
    expect(events).toHaveLength(8);
    const order = events.map((e) => Number(e.split('#')[1]));
    expect([...order].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(order, 'reordered').not.toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('drops messages silently (a lost snapshot is reported failed) and duplicates them', () => {
    const lossy = network({ random: seededRandom(2), faults: { drop: 1 } });
    lossy.t.a!.send('b', [msg('a', 'b', 1), msg('a', 'b', 2, 'snap')]);
    lossy.clock.runDeferred();
    expect(lossy.events).toEqual(['a snapshot to b failed']);
    expect(lossy.net.dropped).toBe(2);
    const twice = network({ random: seededRandom(2), faults: { duplicate: 1 } });
    twice.t.a!.send('b', [msg('a', 'b', 1)]);
    twice.clock.runDeferred();
    expect(twice.events).toEqual(['b got app:a#1', 'b got app:a#1']);
    expect(twice.net.duplicated).toBe(1);
  });

  it('replays the same deliveries for the same seed', () => {
    const run = (seed: number) => {
      const { clock, events, t } = network({
        random: seededRandom(seed),
        faults: { drop: 0.3, duplicate: 0.3, delayMs: [1, 30] },
      });
      for (let i = 1; i <= 30; i++) t.a!.send(i % 2 ? 'b' : 'c', [msg('a', i % 2 ? 'b' : 'c', i)]);
      clock.advance(100);
      return events;
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });
});
