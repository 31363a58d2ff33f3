// An agent's RATE_LIMITED answer as the ledger applies it (src/flow/flow-state.ts
// pause(), src/mesh/ledger.ts): the attempt is not counted, the task's rate key
// starts nothing before the hint has passed and then resumes at its sustained
// rate (no fresh burst), the hint is capped, and it all survives the log codec
// and a snapshot, as every replica must compute the same.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ResultStatus, TaskResult, TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { MAX_RETRY_AFTER_MS, rateLimitedFor } from '../../src/flow/flow-state.js';
import { Ledger, type LedgerCommand } from '../../src/mesh/ledger.js';
import { decodeCommands, encodeCommands } from '../../src/mesh/ledger-codec.js';
import { parseTopology } from '../../src/topology/parse.js';

const topology = parseTopology(`
name: t
addressing: { host: 127.0.0.1, basePort: 20000 }
flow:
  rateLimits:
    llm: { units: 10, periodMs: 1000, burst: 3 }
cells:
  name: /
`);

const ledger = (): Ledger =>
  new Ledger({ retention: 1000, defaultMaxAttempts: 1, flow: { spec: topology.flow, defaultTimeoutMs: 3000 } });

const spec = (p: Partial<TaskSpec> = {}): TaskSpec => TaskSpec.fromPartial({ kind: 'k', rateLimitKey: 'llm', ...p });

/** Every command goes through the log codec, as replicas see it. */
function apply(l: Ledger, cmd: LedgerCommand) {
  return decodeCommands(encodeCommands([cmd])).flatMap((c) => l.apply(c));
}

function accept(l: Ledger, id: string, s: TaskSpec = spec()): void {
  apply(l, { type: 'accepted', tasks: [{ id, spec: s, homeCell: '/', atMs: 0 }] });
}

const start = (l: Ledger, id: string, atMs: number) =>
  apply(l, { type: 'dispatched', refs: [{ id, attempt: (l.get(id)?.attempt ?? 0) + 1 }], atMs })[0]!;

function rateLimited(l: Ledger, id: string, retryAfterMs: number, atMs: number) {
  const attempt = l.get(id)!.attempt;
  const result = TaskResult.fromPartial({
    taskId: id,
    attempt,
    status: ResultStatus.RESULT_STATUS_RATE_LIMITED,
    error: '429 from the provider',
    agentId: 'a',
    retryAfterMs,
  });
  return apply(l, { type: 'attemptFailed', id, attempt, reason: result.error, result, counted: false, atMs })[0]!;
}

describe('RATE_LIMITED answers in the ledger', () => {
  it('do not spend an attempt: a task with max_attempts 1 is QUEUED again after each', () => {
    const l = ledger();
    accept(l, 't');
    let at = 0;
    for (let i = 0; i < 5; i++) {
      expect(start(l, 't', at).ok).toBe(true);
      const res = rateLimited(l, 't', 100, at + 1);
      expect(res.ok && res.state).toBe(TaskState.TASK_STATE_QUEUED);
      at += 101;
    }
    expect(l.get('t')!.failures).toBe(0);
    expect(l.get('t')!.attempt).toBe(5);
  });

  it("pause the task's rate key mesh-wide until the hint, then resume at the sustained rate, not a burst", () => {
    const l = ledger();
    for (const id of ['a', 'b', 'c', 'd', 'e']) accept(l, id);
    expect(start(l, 'a', 1000).ok).toBe(true);
    rateLimited(l, 'a', 500, 1010); // paused until 1510
    // Other tasks of the key: refused before 1510 (the burst of 3 had room).
    expect(start(l, 'b', 1011)).toMatchObject({ ok: false, why: 'limited' });
    expect(start(l, 'b', 1509)).toMatchObject({ ok: false, why: 'limited' });
    expect(start(l, 'b', 1510).ok).toBe(true);
    // Then one per emission interval (100 ms), even though a burst of 3 would fit an idle key.
    expect(start(l, 'c', 1510)).toMatchObject({ ok: false, why: 'limited' });
    expect(start(l, 'c', 1610).ok).toBe(true);
    expect(start(l, 'd', 1650)).toMatchObject({ ok: false, why: 'limited' });
    expect(start(l, 'd', 1710).ok).toBe(true);
  });

  it('leave keys without a rule, and tasks without a rate key, alone', () => {
    const l = ledger();
    accept(l, 'x', spec({ rateLimitKey: '' }));
    accept(l, 'y');
    start(l, 'x', 0);
    rateLimited(l, 'x', 60_000, 1);
    expect(l.flow.tat('llm')).toBe(0);
    expect(start(l, 'y', 2).ok).toBe(true);
  });

  it('cap the hint at MAX_RETRY_AFTER_MS; other results ask for no wait', () => {
    const r = (status: ResultStatus, retryAfterMs: number) => TaskResult.fromPartial({ status, retryAfterMs });
    expect(rateLimitedFor(r(ResultStatus.RESULT_STATUS_RATE_LIMITED, 0xffffffff))).toBe(MAX_RETRY_AFTER_MS);
    expect(rateLimitedFor(r(ResultStatus.RESULT_STATUS_RATE_LIMITED, 250))).toBe(250);
    expect(rateLimitedFor(r(ResultStatus.RESULT_STATUS_ERROR, 250))).toBe(0);
    expect(rateLimitedFor(undefined)).toBe(0);
    const l = ledger();
    accept(l, 'a');
    accept(l, 'b');
    start(l, 'a', 0);
    rateLimited(l, 'a', 0xffffffff, 0);
    expect(start(l, 'b', MAX_RETRY_AFTER_MS - 1)).toMatchObject({ ok: false, why: 'limited' });
    expect(start(l, 'b', MAX_RETRY_AFTER_MS).ok).toBe(true);
  });

  it('property: a paused key starts nothing before the pause ends, and a snapshot carries the pause', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.integer({ min: 0, max: 6000 }), { minLength: 1, maxLength: 20 }),
        (hint, offsets) => {
          const l = ledger();
          accept(l, 'p');
          start(l, 'p', 0);
          rateLimited(l, 'p', hint, 10);
          const copy = ledger();
          copy.restore(l.snapshot());
          offsets.sort((x, y) => x - y);
          offsets.forEach((off, i) => {
            for (const led of [l, copy]) {
              accept(led, `q${i}`);
              const ok = start(led, `q${i}`, 10 + off).ok;
              if (off < hint) expect(ok).toBe(false);
            }
            // Both replicas decide the same.
            expect(copy.get(`q${i}`)!.state).toBe(l.get(`q${i}`)!.state);
          });
        },
      ),
      { seed: Number(process.env.MESHLB_TEST_SEED ?? 1212), numRuns: 200 },
    );
  });
});
