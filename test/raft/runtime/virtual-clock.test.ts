// Real RaftReplica groups on an injected virtual clock, with memory stores and
// a seeded faulty MemoryNetwork: what the mesh simulator builds on. Claims:
// a group elects and commits with no real timer set by the Raft library, and
// a seed replays the run exactly; a stopped leader's successor leads and the
// old replica, restarted on the same store objects, catches up; with lost,
// duplicated, delayed messages and a cut link, proposals still commit and
// every state machine ends the same.
import { afterEach, describe, expect, it } from 'vitest';
import {
  NotLeaderError,
  TimeoutError,
  realClock,
  type NetworkFaults,
  type RaftClock,
  type RaftLimits,
} from '../../../src/raft/index.js';
import type { Scheduler } from '../../../src/mesh/scheduler.js';
import { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';
import { putCommand } from '../../../examples/raft-kv/state.js';
import { VirtualGroup } from './virtual-group.js';

// The clock port is the mesh's Scheduler, member for member (checked by the compiler both ways).
const asClock: RaftClock = new VirtualScheduler();
const asScheduler: Scheduler = realClock;

let group: VirtualGroup | undefined;
afterEach(async () => {
  await group?.stopAll();
  group = undefined;
});

/** Records every real timer or immediate set from src/raft while installed. */
function watchRealTimers(): { hits: string[]; restore(): void } {
  const hits: string[] = [];
  const g = globalThis as unknown as Record<string, (...args: unknown[]) => unknown>;
  const names = ['setTimeout', 'setInterval', 'setImmediate'];
  const saved = names.map((n) => [n, g[n]!] as const);
  for (const [n, orig] of saved) {
    g[n] = (...args: unknown[]) => {
      const stack = new Error().stack ?? '';
      if (stack.includes('/src/raft/')) hits.push(`${n} from ${stack.split('\n').slice(2, 4).join(' <- ')}`);
      return orig(...args);
    };
  }
  return { hits, restore: () => saved.forEach(([n, orig]) => (g[n] = orig)) };
}

/** Commit `key` through whoever leads, retrying what a leader change or a lost message failed. */
async function commit(g: VirtualGroup, key: string, value: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const leader = await g.driver.until(() => g.leader(), 5_000, 'an agreed leader');
    try {
      const index = await g.driver.resolve(
        g.replica(leader).propose(putCommand(key, value), { timeoutMs: 1_000 }),
        2_000,
        `${key} to commit`,
      );
      g.note(`${key} committed at ${String(index)} by ${leader}`);
      return;
    } catch (err) {
      if (!(err instanceof NotLeaderError || err instanceof TimeoutError)) throw err;
      g.note(`${key} retried after ${err.name}`);
    }
  }
  throw new Error(`${key} never committed`);
}

/** Every running replica holds `keys` entries and the same state, and has applied the same index. */
function converged(g: VirtualGroup, keys: number): boolean {
  const running = g.running();
  const first = JSON.stringify([...running[0]!.kv.data]);
  return running.every(
    (m) =>
      m.kv.data.size === keys &&
      JSON.stringify([...m.kv.data]) === first &&
      m.replica!.status().applied === running[0]!.replica!.status().applied,
  );
}

/** Elect, then commit `n` puts at once on the leader; the trace and the end time. */
async function electAndCommit(seed: number, n: number): Promise<{ trace: string[]; leader: string; term: number }> {
  const g = (group = new VirtualGroup(seed));
  g.startAll();
  const leader = await g.driver.until(() => g.leader(), 2_000, 'a leader');
  const term = g.replica(leader).status().term;
  const proposals = Array.from({ length: n }, (_, i) => g.replica(leader).propose(putCommand(`k${i}`, `${i}`)));
  const indexes = await g.driver.resolve(Promise.all(proposals), 1_000, 'the proposals to commit');
  g.note(`committed at ${indexes.join(',')}`);
  await g.driver.until(() => converged(g, n), 1_000, 'every replica to apply them');
  g.note(`converged, ${g.net.delivered} messages delivered`);
  expect(g.clock.now(), 'virtual ms for election and commits').toBeLessThan(2_500);
  await g.stopAll();
  return { trace: [...g.trace], leader, term };
}

describe('RaftReplica on a virtual clock', () => {
  it('the clock port has the mesh scheduler shape, and the watcher sees a real timer from src/raft', () => {
    expect(typeof asClock.defer).toBe('function');
    expect(typeof asScheduler.setTimer).toBe('function');
    const watch = watchRealTimers();
    try {
      realClock.defer(() => undefined);
      realClock.setTimer(1, () => undefined).cancel();
    } finally {
      watch.restore();
    }
    expect(watch.hits).toHaveLength(2);
  });

  it('elects a leader and commits with no real timer, and replays the same run from the same seed', async () => {
    const watch = watchRealTimers();
    let first: Awaited<ReturnType<typeof electAndCommit>>;
    try {
      first = await electAndCommit(42, 20);
    } finally {
      watch.restore();
    }
    expect(watch.hits).toEqual([]);
    const again = await electAndCommit(42, 20);
    expect(again).toEqual(first);
    expect(first.trace.length).toBeGreaterThan(5);
    expect(first.term).toBeGreaterThan(1);
  });

  it('a stopped leader is succeeded; restarted on the same stores it catches up (by snapshot)', async () => {
    const limits: Partial<RaftLimits> = { snapshotEvery: 10, snapshotKeep: 5 };
    const g = (group = new VirtualGroup(7, ['a', 'b', 'c'], {}, limits));
    g.startAll();
    const old = await g.driver.until(() => g.leader(), 2_000, 'a leader');
    const oldTerm = g.replica(old).status().term;
    for (let i = 0; i < 5; i++) await commit(g, `before${i}`, 'x');
    await g.stop(old);
    const next = await g.driver.until(() => g.leader(), 2_000, 'a new leader');
    expect(next).not.toBe(old);
    expect(g.replica(next).status().term).toBeGreaterThan(oldTerm);
    for (let i = 0; i < 30; i++) await commit(g, `during${i}`, 'y');
    // The leader compacted past everything the old replica holds: it must catch up by snapshot.
    expect(g.replica(next).status().firstIndex).toBeGreaterThan(g.member(old).log.lastIndex() + 1);
    const restarted = g.start(old);
    await commit(g, 'after', 'z');
    await g.driver.until(() => converged(g, 36), 3_000, `${old} to catch up`);
    expect(restarted.status().applied).toBe(g.replica(next).status().applied);
    expect(g.member(old).kv.restores).toBeGreaterThanOrEqual(1);
    expect(g.member(old).log.snapshots.latestMeta()!.index).toBeGreaterThan(10);
  });

  it('with lost, duplicated and delayed messages and a cut link, proposals commit and the replicas agree', async () => {
    const faults: Partial<NetworkFaults> = { drop: 0.05, duplicate: 0.05, delayMs: [1, 20] };
    const run = async (seed: number) => {
      const g = (group = new VirtualGroup(seed, ['a', 'b', 'c'], faults, { snapshotEvery: 20, snapshotKeep: 5 }));
      g.startAll();
      for (let i = 0; i < 15; i++) await commit(g, `k${i}`, `${i}`);
      // Cut one follower off its leader (not off the other follower) while more commits go through.
      const leader = await g.driver.until(() => g.leader(), 5_000, 'a leader');
      const follower = g.ids.find((id) => id !== leader)!;
      g.net.cut(leader, follower);
      g.note(`cut ${leader}-${follower}`);
      for (let i = 15; i < 30; i++) await commit(g, `k${i}`, `${i}`);
      g.net.heal(leader, follower);
      g.note('healed');
      await g.driver.until(() => converged(g, 30), 10_000, 'the replicas to agree');
      for (let i = 0; i < 30; i++) expect(g.member(follower).kv.data.get(`k${i}`)).toBe(`${i}`);
      expect(g.net.dropped).toBeGreaterThan(0);
      expect(g.net.duplicated).toBeGreaterThan(0);
      g.note(`done: ${g.net.delivered} delivered, ${g.net.dropped} dropped, ${g.net.duplicated} duplicated`);
      await g.stopAll();
      return [...g.trace];
    };
    const trace = await run(3);
    expect(await run(3)).toEqual(trace);
  });
});
