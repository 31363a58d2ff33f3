// The pure parts of `meshlb sim`: the seeded chaos schedule, the topology
// rewrite for --netns, the failover percentiles and the task accounting; and
// the --netns refusal when namespaces cannot be made (no root).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSim } from '../../src/cli/sim.js';
import { chaosSchedule, planChaos, usableKinds, type ChaosPlanInput } from '../../src/cli/sim/chaos.js';
import { memberOf, netnsMembers, netnsTopologyYaml } from '../../src/cli/sim/netns-topology.js';
import { accountTasks, failoverByTier, percentiles, type AgentSimReport } from '../../src/cli/sim/report.js';
import { loadTopology, parseTopology } from '../../src/topology/parse.js';
import { splitAddress } from '../../src/topology/paths.js';
import { TIERS } from '../../src/topology/types.js';

const topologies = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'deploy', 'topologies');
const ha = loadTopology(join(topologies, 'ha.yaml'));
const example = loadTopology(join(topologies, 'example.yaml'));
const shape = (t: typeof ha) => t.cells.map((c) => ({ path: c.path, tier: c.tier, replicas: c.replicas.length }));
const ALL = ['kill-leader', 'kill-agents', 'partition', 'restart', 'pause'] as const;
const input = (over: Partial<ChaosPlanInput> = {}): ChaosPlanInput => ({
  seed: 7,
  kinds: ALL,
  cells: shape(ha),
  entry: '/',
  everyMs: 1000,
  downMs: 1500,
  ...over,
});

describe('chaos schedule', () => {
  it('is a function of the seed: same seed, same events; another seed, other events', () => {
    expect(planChaos(input(), 50)).toEqual(planChaos(input(), 50));
    expect(planChaos(input({ seed: 8 }), 50)).not.toEqual(planChaos(input(), 50));
    // Pinned: a seed printed in a report replays the same schedule in later versions too.
    expect(planChaos(input(), 5).map((e) => `${e.atMs} ${e.kind} ${e.cell}#${e.replica} ${e.holdMs}`)).toEqual([
      '906 pause /eu/west-1b/n1#1 1540',
      '2136 kill-agents /eu/west-1b/n1#0 1242',
      '3400 partition /eu/west-1b/n2#1 2802',
      '4193 restart /us#1 0',
      '5671 kill-leader /#0 1783',
    ]);
  });

  it('walks kill-leader through every tier in turn when no tier is chosen', () => {
    const kills = planChaos(input({ kinds: ['kill-leader'] }), 8).map((e) => e.tier);
    expect(new Set(kills.slice(0, 4))).toEqual(new Set(TIERS));
    expect(kills.slice(4)).toEqual(kills.slice(0, 4));
  });

  it('holds every enabled kind once per round, with gaps and holds drawn around the settings', () => {
    const events = planChaos(input(), 100);
    for (let r = 0; r < 20; r++) expect(new Set(events.slice(r * 5, r * 5 + 5).map((e) => e.kind)).size).toBe(5);
    events.forEach((e, i) => {
      expect(e.seq).toBe(i);
      const gap = e.atMs - (i ? events[i - 1]!.atMs : 0);
      expect(gap).toBeGreaterThanOrEqual(500);
      expect(gap).toBeLessThanOrEqual(1500);
      const [lo, hi] = e.kind === 'restart' ? [0, 0] : e.kind === 'partition' ? [2250, 3750] : [1125, 1875];
      expect(e.holdMs).toBeGreaterThanOrEqual(lo);
      expect(e.holdMs).toBeLessThanOrEqual(hi);
      const cell = ha.byPath.get(e.cell)!;
      expect(e.tier).toBe(cell.tier);
      if (e.kind === 'kill-leader' || e.kind === 'kill-agents') expect(e.replica).toBe(0);
      else {
        expect(e.replica).toBeGreaterThanOrEqual(1);
        expect(e.replica).toBeLessThanOrEqual(cell.replicas.length);
      }
      if (e.kind === 'kill-agents') expect(e.tier).toBe('node');
    });
    // kill-leaders without --kill-tier reaches every tier over a long run
    expect(new Set(events.filter((e) => e.kind === 'kill-leader').map((e) => e.tier))).toEqual(new Set(TIERS));
  });

  it('holds a partition past twice the link timeout when that is longer, so both ends notice the cut', () => {
    const long = planChaos(input({ linkTimeoutMs: 4000 }), 50);
    const base = planChaos(input(), 50);
    long.forEach((e, i) => {
      if (e.kind !== 'partition') return expect(e).toEqual(base[i]);
      expect(e.holdMs).toBeGreaterThanOrEqual(6000);
      expect(e.holdMs).toBeLessThanOrEqual(10000);
    });
    expect(planChaos(input({ linkTimeoutMs: 500 }), 50)).toEqual(base);
  });

  it('kill-leaders at a chosen tier hits only that tier', () => {
    for (const tier of TIERS) {
      const kills = planChaos(input({ kinds: ['kill-leader'], killTier: tier }), 30);
      expect(
        kills.every((e) => e.kind === 'kill-leader' && e.tier === tier),
        tier,
      ).toBe(true);
    }
  });

  it('spares a single-replica entry cell, and drops kinds with nothing to hit', () => {
    const ex = input({ cells: shape(example) });
    expect(planChaos(ex, 200).some((e) => e.cell === '/')).toBe(false);
    // ha's root has 3 replicas: fair game
    expect(planChaos(input(), 200).some((e) => e.cell === '/')).toBe(true);
    expect(usableKinds({ ...ex, killTier: 'global' })).toEqual(['kill-agents', 'partition', 'restart', 'pause']);
    const noNodes = input({ cells: [{ path: '/', tier: 'global', replicas: 1 }], kinds: ['kill-agents', 'pause'] });
    expect(usableKinds(noNodes)).toEqual([]);
    expect([...chaosSchedule(noNodes)]).toEqual([]);
    expect(planChaos(input({ kinds: [] }), 5)).toEqual([]);
  });
});

describe('topology rewrite for --netns', () => {
  it('puts every replica at its namespace address on its own port, and changes nothing else', () => {
    const members = netnsMembers(ha);
    expect(members.size).toBe(29);
    expect(new Set(members.values()).size).toBe(29);
    for (const m of members.values()) expect(m).toMatch(/^[a-z0-9]{1,12}$/);
    const ip = (cell: string, replica: number) => `10.201.7.${2 + Number(memberOf(members, cell, replica).slice(1))}`;
    const yaml = netnsTopologyYaml(ha, (c, r) => ip(c.path, r.replica));
    const t = parseTopology(yaml, 'rewritten');
    expect(t.name).toBe(ha.name);
    expect(t.defaults).toEqual(ha.defaults);
    expect(t.cells.map((c) => [c.path, c.tier, c.parent, c.policy, c.labels, c.replicas.length])).toEqual(
      ha.cells.map((c) => [c.path, c.tier, c.parent, c.policy, c.labels, c.replicas.length]),
    );
    const hosts = new Set<string>();
    for (const c of t.cells) {
      c.replicas.forEach((r, i) => {
        const before = splitAddress(ha.byPath.get(c.path)!.replicas[i]!.address)!;
        const after = splitAddress(r.address)!;
        expect(after.port).toBe(before.port);
        expect(after.host).toBe(ip(c.path, r.replica));
        hosts.add(after.host);
      });
    }
    expect(hosts.size).toBe(29);
    expect(() => memberOf(members, '/nowhere', 1)).toThrow(/no namespace/);
  });
});

describe('failover percentiles', () => {
  it('nearest rank: p50, p99 and max of any order; null for none', () => {
    expect(percentiles([])).toBeNull();
    expect(percentiles([42])).toEqual({ n: 1, p50: 42, p99: 42, max: 42 });
    expect(percentiles([4, 1, 3, 2])).toEqual({ n: 4, p50: 2, p99: 4, max: 4 });
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentiles(hundred)).toEqual({ n: 100, p50: 50, p99: 99, max: 100 });
    const thousand = Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentiles(thousand)).toEqual({ n: 1000, p50: 500, p99: 990, max: 1000 });
  });

  it('groups kills by tier; dispatch-resumed is n/a when no replica reports dispatched', () => {
    const samples = [
      { tier: 'zone' as const, cell: '/a/b', failoverMs: 300, dispatchResumedMs: 900 },
      { tier: 'zone' as const, cell: '/a/c', failoverMs: 100 },
      { tier: 'zone' as const, cell: '/a/d', unmeasured: 'run ended first' },
      { tier: 'node' as const, cell: '/a/b/n', unmeasured: 'single replica' },
    ];
    const f = failoverByTier(samples, true);
    expect(f.zone).toEqual({
      kills: 3,
      failover_ms: { n: 2, p50: 100, p99: 300, max: 300 },
      dispatch_resumed_ms: { n: 1, p50: 900, p99: 900, max: 900 },
      not_measured: { 'run ended first': 1 },
    });
    expect(f.node).toEqual({
      kills: 1,
      failover_ms: null,
      dispatch_resumed_ms: null,
      not_measured: { 'single replica': 1 },
    });
    expect(f.global.kills).toBe(0);
    expect(failoverByTier(samples, false).zone.dispatch_resumed_ms).toBe('n/a');
  });
});

describe('task accounting', () => {
  const submit = { accepted: 100, completed: 100, failed: 0, cancelled: 0, dead_lettered: 0, unfinished: 0 };
  const agents: AgentSimReport[] = [
    { name: 'agents /a', starts: 1, started: 60 },
    { name: 'agents /b', starts: 1, started: 43 },
  ];
  const home = { accepted: 100, completed: 100, failed: 0, deadLettered: 0 };

  it('counts what submit, the agent-sims and the home report', () => {
    expect(accountTasks(submit, agents, home)).toEqual({
      acknowledged: 100,
      lost: 0,
      duplicate_executions: 3,
      recorded_twice: 0,
      why_na: {},
    });
    expect(accountTasks(submit, agents, { ...home, completed: 102 }).recorded_twice).toBe(2);
    expect(accountTasks({ ...submit, completed: 97, unfinished: 3 }, agents, home).lost).toBe(3);
  });

  it('says n/a, with the reason, for what it cannot know', () => {
    const killed = accountTasks(submit, [{ ...agents[0]!, starts: 2 }, agents[1]!], home);
    expect(killed.duplicate_executions).toBe('n/a');
    expect(killed.why_na.duplicate_executions).toMatch(/killed -9/);
    expect(accountTasks(submit, [{ name: 'agents /a', starts: 1 }], home).why_na.duplicate_executions).toMatch(
      /no final report/,
    );
    const dead = accountTasks({ ...submit, completed: 99, dead_lettered: 1 }, agents, home);
    expect(dead.duplicate_executions).toBe('n/a');
    const unread = accountTasks(submit, agents, undefined);
    expect(unread.recorded_twice).toBe('n/a');
    expect(unread.why_na.recorded_twice).toMatch(/GetCell/);
    expect(accountTasks(submit, agents, { ...home, accepted: 40 }).why_na.recorded_twice).toMatch(/cover 40/);
    // The home accepted more than submit heard of (answers lost to deadlines): known only once nothing is pending there.
    const more = { ...home, accepted: 120, completed: 120, cancelled: 0 };
    expect(accountTasks(submit, agents, { ...more, pending: 0 }).recorded_twice).toBe(0);
    expect(accountTasks(submit, agents, { ...more, completed: 121, pending: 0 }).recorded_twice).toBe(1);
    const held = accountTasks(submit, agents, { ...more, completed: 118, pending: 2 });
    expect(held.recorded_twice).toBe('n/a');
    expect(held.why_na.recorded_twice).toMatch(/2 still pending/);
    const none = accountTasks(null, agents, home);
    expect([none.acknowledged, none.duplicate_executions, none.recorded_twice]).toEqual(['n/a', 'n/a', 'n/a']);
  });
});

describe('meshlb sim --netns where namespaces cannot be made', () => {
  it('says why in one line and exits 2, before starting anything', async () => {
    const lines: string[] = [];
    const code = await runSim({
      topologyFile: '/nonexistent.yaml', // never read: the refusal comes first
      durationS: 1,
      agentsPerNode: 1,
      rate: 1,
      chaos: { killLeaders: false, killAgents: false, partition: true },
      netns: true,
      seed: 1,
      json: false,
      progress: (l) => lines.push(l),
      probeNetns: () => ({ ok: false, reason: 'network namespaces need root (uid is 1000)' }),
    });
    expect(code).toBe(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^meshlb sim: --netns cannot run here: network namespaces need root \(uid is 1000\)/);
    expect(lines[0]).not.toMatch(/\n|at .*\.ts:\d+/);
  });
});
