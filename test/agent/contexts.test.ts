// The agent SDK's context set (src/agent/contexts.ts): deltas while connected,
// the whole set with `reset` after each welcome, bounded, keys checked.
import { describe, expect, it } from 'vitest';
import { AgentContextSet, MAX_HELD } from '../../src/agent/contexts.js';
import type { AgentContexts, ConnectRequest } from '../../src/gen/meshlb/v1/agent.js';

function port(connected = true) {
  const sent: AgentContexts[] = [];
  const p = {
    up: connected,
    connected: () => p.up,
    write: (m: ConnectRequest) => {
      if (m.msg?.$case === 'contexts') sent.push(m.msg.value);
    },
  };
  return { p, sent };
}

describe('AgentContextSet', () => {
  it('sends deltas while connected and the whole set with reset at a welcome', () => {
    const { p, sent } = port();
    const set = new AgentContextSet(p, ['staged']);
    set.hold('a', 'b');
    set.drop('a', 'never-held');
    expect(sent).toEqual([
      { held: ['a', 'b'], dropped: [], reset: false },
      { held: [], dropped: ['a'], reset: false },
    ]);
    sent.length = 0;
    set.announce();
    expect(sent).toEqual([{ held: ['staged', 'b'], dropped: [], reset: true }]);
  });

  it('holds nothing back while disconnected: the next welcome carries it', () => {
    const { p, sent } = port(false);
    const set = new AgentContextSet(p);
    set.hold('x');
    expect(sent).toHaveLength(0);
    p.up = true;
    set.announce();
    expect(sent).toEqual([{ held: ['x'], dropped: [], reset: true }]);
  });

  it('an agent that never held a key sends nothing at a welcome; one that dropped all resets', () => {
    const { p, sent } = port();
    const set = new AgentContextSet(p);
    set.announce();
    expect(sent).toHaveLength(0);
    set.hold('k');
    set.drop('k');
    sent.length = 0;
    set.announce();
    expect(sent).toEqual([{ held: [], dropped: [], reset: true }]);
  });

  it('keeps at most MAX_HELD keys, reporting the oldest as dropped', () => {
    const { p, sent } = port();
    const set = new AgentContextSet(
      p,
      Array.from({ length: MAX_HELD }, (_, i) => `k${i}`),
    );
    set.hold('one-more');
    expect(set.size).toBe(MAX_HELD);
    expect(set.list()[0]).toBe('k1');
    expect(sent).toEqual([{ held: ['one-more'], dropped: ['k0'], reset: false }]);
    sent.length = 0;
    set.announce();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.held).toHaveLength(MAX_HELD);
  });

  it('refuses an empty or over-long key before sending anything', () => {
    const { p, sent } = port();
    const set = new AgentContextSet(p);
    expect(() => set.hold('ok', '')).toThrow(TypeError);
    expect(() => set.hold('é'.repeat(129))).toThrow(/at most 256 bytes \(got 258\)/);
    expect(sent).toHaveLength(0);
    expect(set.size).toBe(0);
  });
});
