// Key templates (docs/flow-control.md, "Templates: one key per customer"):
// `tenant:*` in the topology gives every key `tenant:<anything>` its own
// counter with the template's limit, strategy or rate; dynamic rate keys hold
// state only while ahead of their rate, so a million customers cost nothing
// once idle.
import { describe, expect, it } from 'vitest';
import { FlowState, templateOf } from '../../src/flow/flow-state.js';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { parseTopology } from '../../src/topology/parse.js';

const topology = (flow: string) =>
  parseTopology(`
name: t
addressing: { host: 127.0.0.1, basePort: 20000 }
flow:
${flow}
cells:
  name: /
`);

const FLOW = `  concurrency:
    "tenant:*": { limit: 2, strategy: cancel-newest }
    tenant:vip: { limit: 5 }
  rateLimits:
    "api:*": { units: 10, periodMs: 1000, burst: 1 }`;

const state = () => new FlowState({ spec: topology(FLOW).flow, defaultTimeoutMs: 1000 });
const ck = (key: string) => TaskSpec.fromPartial({ kind: 'k', concurrencyKey: key });
const rk = (key: string) => TaskSpec.fromPartial({ kind: 'k', rateLimitKey: key });

describe('flow key templates', () => {
  it('give every key of the prefix its own counter with the template limit; an exact key wins', () => {
    const f = state();
    expect(templateOf('tenant:a')).toBe('tenant:*');
    expect(templateOf('plain')).toBe('');
    expect(f.limit('tenant:a')).toBe(2);
    expect(f.strategy('tenant:a')).toBe('cancel-newest');
    expect(f.limit('tenant:vip')).toBe(5);
    expect(f.strategy('tenant:vip')).toBe('queue');
    expect(f.limit('other:a')).toBe(Infinity);
    for (const [i, key] of ['tenant:a', 'tenant:a', 'tenant:b', 'tenant:b'].entries())
      expect(f.start(ck(key), `t${i}`, 1, 0)).toBe(true);
    expect(f.start(ck('tenant:a'), 't9', 1, 0)).toBe(false);
    expect(f.permits.held('tenant:a')).toBe(2);
    expect(f.permits.held('tenant:*')).toBe(0);
    // A runtime limit for one key overrides its template for that key only.
    f.setLimit('tenant:a', 3);
    expect(f.start(ck('tenant:a'), 't9', 1, 0)).toBe(true);
    expect(f.limit('tenant:b')).toBe(2);
  });

  it('give every rate key of the prefix its own rate', () => {
    const f = state();
    expect(f.start(rk('api:a'), 'a1', 1, 0)).toBe(true);
    expect(f.start(rk('api:b'), 'b1', 1, 0)).toBe(true);
    expect(f.start(rk('api:a'), 'a2', 1, 50)).toBe(false);
    expect(f.rateKeys().sort()).toEqual(['api:*', 'api:a', 'api:b']);
    expect(f.start(rk('api:a'), 'a2', 1, 100)).toBe(true);
    // b's TAT (100) has passed: its state is gone, as if it had never been used.
    expect(f.rateKeys().sort()).toEqual(['api:*', 'api:a']);
  });

  it('forget dynamic rate keys once their rate has passed, even behind a long pause', () => {
    const f = state();
    f.start(rk('api:first'), 'p', 1, 0);
    f.pause('api:first', 600_000); // ahead for ten minutes: must not keep others from being forgotten
    let most = 0;
    for (let i = 0; i < 10_000; i++) {
      // One call per customer, 20 ms apart: each key's TAT passes 100 ms later.
      expect(f.start(rk(`api:c${i}`), `c${i}`, 1, 1000 + i * 20)).toBe(true);
      most = Math.max(most, f.rateKeys().length);
    }
    expect(most).toBeLessThan(20);
    expect(f.rateKeys()).toContain('api:first');
    // And the state a snapshot carries is as small.
    expect(f.toProto().rates.length).toBeLessThan(20);
  });

  it('the topology accepts prefix:* and refuses other uses of *', () => {
    expect(topology(FLOW).flow?.concurrency.get('tenant:*')?.limit).toBe(2);
    expect(() => topology(`  concurrency:\n    "a*": { limit: 1 }`)).toThrow(/template prefix:\*/);
    expect(() => topology(`  concurrency:\n    "a:b:*": { limit: 1 }`)).toThrow(/template prefix:\*/);
  });
});
