// Version ramps at a node cell (src/mesh/version-ramps.ts), without a network:
// candidates carry their side of each ramp of their kinds, a task gets its
// side as an affinity label (or the other side when its own has no usable
// agent here), and the status names an old version draining and drained at
// 100%. The ramps are ledger config: applied, snapshotted and carried by the
// codec like the other config commands.
import { describe, expect, it } from 'vitest';
import { Ledger } from '../../src/mesh/ledger.js';
import { decodeCommands, encodeCommands } from '../../src/mesh/ledger-codec.js';
import type { AgentSession } from '../../src/mesh/agent-session.js';
import { RAMP_LABEL, VersionRamps } from '../../src/mesh/version-ramps.js';
import { makeCandidate } from '../../src/policies/index.js';
import { toNewVersion } from '../../src/policies/version-split.js';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import type { WorkItem } from '../../src/mesh/types.js';

function session(
  id: string,
  version: string,
  held = 0,
  o: { draining?: boolean; kinds?: string[] } = {},
): AgentSession {
  const kinds = o.kinds ?? ['k'];
  return {
    id,
    version,
    kinds,
    labels: [{ key: 'zone', value: 'a' }],
    dead: false,
    draining: o.draining ?? false,
    assigned: new Map(
      Array.from({ length: held }, (_, i) => [`t${i}#1`, { kind: kinds[0]!, spec: TaskSpec.fromPartial({}) }]),
    ),
    carried: new Map(),
  } as unknown as AgentSession;
}

const item = (taskId: string, p: Partial<TaskSpec> = {}): WorkItem =>
  ({ taskId, kind: p.kind ?? 'k', spec: TaskSpec.fromPartial({ kind: 'k', ...p }) }) as unknown as WorkItem;

function observed(v: VersionRamps, sessions: AgentSession[]): void {
  v.observe(
    sessions.map((s) =>
      makeCandidate({
        id: s.id,
        slots: new Map([['k', { free: 1, total: 1 }]]),
        labels: v.labels(s),
        draining: s.draining,
      }),
    ),
  );
}

describe('VersionRamps', () => {
  it('labels each agent of a ramped kind with its side; no ramp, no label', () => {
    const v = new VersionRamps();
    const a = session('a', 'v1');
    expect(v.labels(a)).toBe(a.labels);
    expect(v.set(new Map([['k', { version: 'v2', percent: 5 }]]))).toBe(true);
    expect(v.set(new Map([['k', { version: 'v2', percent: 5 }]]))).toBe(false);
    expect(v.labels(a)).toEqual([...a.labels, { key: `${RAMP_LABEL}k`, value: 'old' }]);
    expect(v.labels(session('b', 'v2'))).toContainEqual({ key: `${RAMP_LABEL}k`, value: 'new' });
    expect(v.labels(session('c', 'v1', 0, { kinds: ['other'] }))).toEqual(a.labels);
  });

  it("gives a task its pin's side as affinity; the context key pins a session; its own affinity is kept", () => {
    const v = new VersionRamps();
    v.set(new Map([['k', { version: 'v2', percent: 30 }]]));
    observed(v, [session('a', 'v1'), session('b', 'v2')]);
    for (let i = 0; i < 200; i++) {
      const id = `t${i}`;
      const side = toNewVersion(id, 30) ? 'new' : 'old';
      expect(v.affinity(item(id))).toEqual([{ key: `${RAMP_LABEL}k`, value: side }]);
    }
    const s = toNewVersion('chat-9', 30) ? 'new' : 'old';
    for (let i = 0; i < 20; i++) expect(v.affinity(item(`x${i}`, { contextKey: 'chat-9' }))![0]!.value).toBe(s);
    const own = [{ key: 'gpu', value: 'a100' }];
    expect(v.affinity(item('t1', { affinity: own }))).toEqual([...own, v.affinity(item('t1'))![0]]);
    expect(v.affinity(item('t1', { kind: 'other' }))).toBeUndefined();
  });

  it('falls back to the other side when the chosen one has no usable agent here, and waits when it is only full', () => {
    const v = new VersionRamps();
    v.set(new Map([['k', { version: 'v2', percent: 100 }]]));
    observed(v, [session('a', 'v1'), session('b', 'v2', 0, { draining: true })]);
    expect(v.affinity(item('t1'))).toEqual([{ key: `${RAMP_LABEL}k`, value: 'old' }]);
    observed(v, [session('a', 'v1')]);
    expect(v.affinity(item('t1'))).toEqual([{ key: `${RAMP_LABEL}k`, value: 'old' }]);
    observed(v, []);
    expect(v.affinity(item('t1'))).toBeUndefined();
    // A v2 agent with no free slot is still usable: the task waits for it (the picker queues it).
    v.observe([
      makeCandidate({
        id: 'b',
        slots: new Map([['k', { free: 0, total: 1 }]]),
        labels: v.labels(session('b', 'v2')),
        draining: false,
      }),
    ]);
    expect(v.affinity(item('t1'))).toEqual([{ key: `${RAMP_LABEL}k`, value: 'new' }]);
  });

  it('shows each version: agents, in flight, and the old one draining then drained at 100%', () => {
    const v = new VersionRamps();
    v.set(new Map([['k', { version: 'v2', percent: 50 }]]));
    const agents = [session('a', 'v1', 2), session('b', 'v1', 1), session('c', 'v2', 1)];
    expect(v.shares('k', agents)).toEqual([
      { version: 'v2', ramped: true, agents: 1, inFlight: 1, state: 'serving' },
      { version: 'v1', ramped: false, agents: 2, inFlight: 3, state: 'serving' },
    ]);
    v.set(new Map([['k', { version: 'v2', percent: 100 }]]));
    expect(v.shares('k', agents)[1]).toMatchObject({ version: 'v1', inFlight: 3, state: 'draining' });
    expect(v.shares('k', [session('a', 'v1', 0), session('c', 'v2', 4)])).toEqual([
      { version: 'v2', ramped: true, agents: 1, inFlight: 4, state: 'serving' },
      { version: 'v1', ramped: false, agents: 1, inFlight: 0, state: 'drained' },
    ]);
    // The new version shows with no agents yet.
    expect(v.shares('k', [])).toEqual([{ version: 'v2', ramped: true, agents: 0, inFlight: 0, state: 'serving' }]);
  });
});

describe('version ramps in the ledger', () => {
  it('are config commands: set, replaced, removed, snapshotted and carried by the codec', () => {
    const l = new Ledger({ retention: 10, defaultMaxAttempts: 3 });
    const seen: number[] = [];
    l.onConfig((c) => seen.push(c.versionRamps.size));
    const [cmd] = decodeCommands(
      encodeCommands([{ type: 'versionRampSet', kind: 'k', version: 'v2', percent: 5.5, atMs: 1 }]),
    );
    expect(l.apply(cmd!)[0]!.ok).toBe(true);
    l.apply({ type: 'versionRampSet', kind: 'j', version: 'v9', percent: 100, atMs: 2 });
    expect([...l.config.versionRamps]).toEqual([
      ['k', { version: 'v2', percent: 5.5 }],
      ['j', { version: 'v9', percent: 100 }],
    ]);
    const copy = new Ledger({ retention: 10, defaultMaxAttempts: 3 });
    copy.restore(l.snapshot());
    expect(copy.config.versionRamps).toEqual(l.config.versionRamps);
    l.apply({ type: 'versionRampSet', kind: 'k', version: '', percent: 0, atMs: 3 });
    expect([...l.config.versionRamps.keys()]).toEqual(['j']);
    expect(seen).toEqual([1, 2, 1]);
  });
});
