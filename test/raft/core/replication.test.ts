// Raft paper §5.3 (log replication, log matching), §5.4.2 (figure 8 commit rule),
// plus flow control: batching, pipelining, inflight bound, probing, back-pressure.
import { describe, expect, it } from 'vitest';
import { Cluster, text } from './cluster.js';
import type { Message } from '../../../src/raft/core/types.js';

const three = ['1', '2', '3'];
const five = ['1', '2', '3', '4', '5'];

function elect(c: Cluster, id: string): void {
  c.campaign(id);
  c.stabilize();
  expect(c.node(id).status().role).toBe('leader');
}

describe('replication', () => {
  it('a new leader appends an empty entry of its term and commits it', () => {
    const c = new Cluster(three);
    elect(c, '1');
    const s = c.node('1').status();
    const last = c.log('1').at(-1)!;
    expect(last.term).toBe(s.term);
    expect(last.data.length).toBe(0);
    expect(s.commit).toBe(last.index);
  });

  it('log matching: followers end with identical logs after conflicting leaders (§5.3)', () => {
    const c = new Cluster(five, { seed: 3 });
    elect(c, '1');
    c.partition(['1', '2'], ['3', '4', '5']);
    c.propose('1', 'lost-1');
    c.propose('1', 'lost-2');
    c.stabilize();
    elect(c, '3');
    c.propose('3', 'kept');
    c.stabilize();
    c.heal();
    c.tick('3', 1);
    c.stabilize();
    const logs = five.map((id) =>
      c
        .log(id)
        .map((e) => `${e.index}/${e.term}/${text(e)}`)
        .join(','),
    );
    expect(new Set(logs).size).toBe(1);
    expect(logs[0]).not.toContain('lost');
    for (const id of five) expect(c.get(id).applied.map(text)).toEqual(['kept']);
  });

  it('a follower rejects an append whose previous entry does not match (consistency check)', () => {
    const c = new Cluster(three);
    elect(c, '1');
    const f = c.node('2');
    const st = f.status();
    f.step({
      type: 'app',
      from: '1',
      to: '2',
      term: st.term,
      logTerm: st.term,
      index: st.lastIndex + 5,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    });
    const out = c.process('2');
    const resp = out.find((m) => m.type === 'appResp')!;
    expect(resp.reject).toBe(true);
    expect(resp.rejectHint).toBe(st.lastIndex);
  });

  it('figure 8: a leader never commits an entry of an earlier term by counting replicas (§5.4.2)', () => {
    const run = (unsafe: boolean) => {
      const c = new Cluster(five, { maxSizePerMsg: 1, knobs: { unsafeCommitPriorTermByCount: unsafe } });
      elect(c, '1'); // term 2, log 1..6
      c.partition(['1', '2'], ['3', '4', '5']);
      c.propose('1', 'a'); // index 7, term 2, reaches only 2
      c.stabilize();
      // 5 wins term 3 with 3 and 4, appends its entry 7@3 but it reaches nobody.
      c.campaign('5');
      c.deliver();
      c.deliver();
      expect(c.node('5').status().role).toBe('leader');
      c.queue = [];
      // 1 comes back with 2 and 3 (4 and 5 down) and wins term 4.
      c.restart('5');
      c.restart('1');
      c.heal();
      c.partition(['1', '2', '3'], ['4', '5']);
      c.campaign('1');
      c.stabilize();
      c.campaign('1');
      for (let i = 0; i < 20 && (c.node('1').status().progress['3']?.match ?? 0) < 7; i++) c.deliver();
      expect(c.node('1').status().role).toBe('leader');
      expect(c.node('1').status().progress['3']!.match).toBe(7); // 7@2 is on a majority now: 1, 2, 3
      const commitWhenOnMajority = c.node('1').status().commit;
      // 1 crashes before 8@4 reaches a majority; 5 returns and wins with 3 and 4.
      c.restart('1');
      c.heal();
      c.isolate('1');
      for (let i = 0; i < 3 && c.node('5').status().role !== 'leader'; i++) {
        c.campaign('5');
        c.stabilize();
      }
      expect(c.node('5').status().role).toBe('leader');
      const final7 = c.log('5').find((e) => e.index === 7)!;
      return { commitWhenOnMajority, final7Term: final7.term, commit5: c.node('5').status().commit };
    };
    const safe = run(false);
    expect(safe.commitWhenOnMajority).toBe(6); // not 7: 7 is of term 2, the leader's term is 4
    expect(safe.final7Term).toBe(3); // and indeed it got overwritten later, legitimately
    expect(safe.commit5).toBeGreaterThanOrEqual(7);
    // The deliberately broken rule commits 7@2, which is later overwritten by 7@3: a safety violation.
    const broken = run(true);
    expect(broken.commitWhenOnMajority).toBe(7);
    expect(broken.final7Term).toBe(3);
  });

  it('fast catch-up: conflict hints skip whole terms instead of one entry per round trip', () => {
    const c = new Cluster(three, { maxSizePerMsg: 1 << 20 });
    elect(c, '1');
    // 3 accumulates a long divergent tail as a leader of a minority.
    c.partition(['3'], ['1', '2']);
    c.campaign('3');
    for (let i = 0; i < 50; i++) c.node('3').propose(new Uint8Array([i])); // uncommitted, term 3
    c.processAll();
    c.queue = [];
    c.tick('1', 1);
    c.stabilize();
    c.campaign('1'); // term 4? 1 must win over 2
    c.stabilize();
    c.heal();
    let rejects = 0;
    for (let round = 0; round < 30; round++) {
      c.processAll();
      rejects += c.queue.filter((m: Message) => m.type === 'appResp' && m.reject && m.from === '3').length;
      if (c.queue.length === 0) break;
      c.deliver();
    }
    c.tick('1', 1);
    c.stabilize();
    expect(c.log('3')).toEqual(c.log('1'));
    expect(rejects).toBeLessThanOrEqual(3);
  });

  it('batches entries by maxSizePerMsg and bounds in-flight appends by maxInflight', () => {
    const c = new Cluster(three, { maxSizePerMsg: 100, maxInflight: 2 });
    elect(c, '1');
    for (let i = 0; i < 20; i++) c.node('1').propose(new Uint8Array(40)); // 56 bytes each with overhead
    const out = c.process('1').filter((m) => m.type === 'app' && m.to === '2');
    expect(out.length).toBeLessThanOrEqual(2); // window of 2
    for (const m of out) expect(m.entries.length).toBeLessThanOrEqual(1); // 2 entries would exceed 100 bytes
    expect(c.node('1').status().progress['2']!.inflight).toBe(out.filter((m) => m.entries.length > 0).length);
    c.stabilize();
    expect(c.node('2').status().commit).toBe(c.node('1').status().lastIndex);
  });

  it('after a rejection the leader probes (one append at a time) and then replicates again', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.isolate('3');
    for (let i = 0; i < 5; i++) c.propose('1', `e${i}`);
    c.stabilize();
    expect(c.node('1').status().progress['3']!.state).toBe('replicate');
    c.heal();
    c.node('1').reportUnreachable('3');
    expect(c.node('1').status().progress['3']!.state).toBe('probe');
    c.tick('1', 1);
    c.stabilize();
    expect(c.node('1').status().progress['3']!.state).toBe('replicate');
    expect(c.get('3').applied.map(text)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
  });

  it('maxUncommitted refuses proposals beyond the limit (back-pressure)', () => {
    const c = new Cluster(three, { maxUncommitted: 3 });
    elect(c, '1');
    c.isolate('1');
    const results = [1, 2, 3, 4].map((i) => c.propose('1', `p${i}`));
    expect(results.slice(0, 3).every((r) => r.ok)).toBe(true);
    expect(results[3]).toEqual({ ok: false, reason: 'tooManyUncommitted' });
  });

  it('followers forward proposals to the leader; without a leader they refuse', () => {
    const c = new Cluster(three);
    expect(c.propose('2', 'x')).toEqual({ ok: false, reason: 'notLeader', leader: '' });
    elect(c, '1');
    expect(c.propose('2', 'y')).toEqual({ ok: true, forwarded: true, leader: '1' });
    c.stabilize();
    for (const id of three) expect(c.get(id).applied.map(text)).toEqual(['y']);
  });

  it('a leader only appends to its log (leader append-only, §5.3)', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.propose('1', 'a');
    c.stabilize();
    const before = c.log('1');
    // A stale append from a bogus lower-term "leader" must not touch the leader's log.
    c.node('1').step({
      type: 'app',
      from: '2',
      to: '1',
      term: 1,
      logTerm: 0,
      index: 0,
      entries: [{ term: 1, index: 1, type: 0, data: new Uint8Array([9]) }],
      commit: 0,
      reject: false,
      rejectHint: 0,
    });
    c.stabilize();
    expect(c.log('1')).toEqual(before);
  });
});
