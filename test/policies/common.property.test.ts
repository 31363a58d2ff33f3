// Properties every registered policy must satisfy, checked against a small
// reference model of credits and eligibility.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPolicy, listPolicies, seededRandom } from '../../src/policies/index.js';
import type { Candidate, Picker, PickResult, TaskInfo } from '../../src/policies/index.js';
import { assertProperty, candidatesArb, CreditModel, taskArb } from './arbitraries.js';

// WRR with its default 10 s blackout would only exercise mean weights here.
const CONFIGS: Record<string, unknown> = { 'region-wrr': { blackoutPeriodMs: 0 } };

function run(
  name: string,
  cands: Candidate[],
  tasks: TaskInfo[],
  seed: number,
): { results: PickResult[]; picker: Picker } {
  const policy = createPolicy(name, CONFIGS[name], { random: seededRandom(seed) });
  const picker = policy.buildPicker(cands, 1_000_000);
  return { results: tasks.map((t) => picker.pick(t)), picker };
}

const scenario = fc.record({
  cands: candidatesArb,
  tasks: fc.array(taskArb, { minLength: 1, maxLength: 40 }),
  seed: fc.integer(),
});

describe('every policy', () => {
  it('registers all tier and baseline policies', () => {
    expect(listPolicies()).toEqual(
      [
        'global-geo',
        'least-loaded',
        'node-score',
        'p2c',
        'random',
        'region-wrr',
        'round-robin',
        'zone-least-conn',
      ].sort(),
    );
  });

  for (const name of listPolicies()) {
    describe(name, () => {
      it('routes only to eligible candidates, and routes/queues/spills exactly when the model says', () => {
        assertProperty(
          fc.property(scenario, ({ cands, tasks, seed }) => {
            const model = new CreditModel(cands);
            const { results, picker } = run(name, cands, tasks, seed);
            tasks.forEach((task, i) => {
              const r = results[i]!;
              const serving = model.serving(task);
              const withCredit = serving.filter((c) => model.credit(c.id, task.kind) > 0);
              if (r.type === 'route') {
                const c = cands.find((x) => x.id === r.candidate)!;
                expect(serving).toContain(c);
                expect(model.credit(c.id, task.kind)).toBeGreaterThan(0);
                expect(c.draining).toBe(false);
                model.take(c.id, task.kind);
              } else if (r.type === 'queue') {
                expect(serving.length).toBeGreaterThan(0);
                expect(withCredit).toEqual([]);
              } else if (r.type === 'spillUp') {
                expect(serving).toEqual([]);
              } else {
                throw new Error(`unexpected reject: ${r.reason}`);
              }
              // route iff an eligible candidate exists
              expect(r.type === 'route').toBe(withCredit.length > 0);
            });
            for (const kind of ['a', 'b', 'c', 'd']) expect(picker.credits(kind)).toBe(model.total(kind));
          }),
        );
      });

      it('is deterministic for a given seed', () => {
        assertProperty(
          fc.property(scenario, ({ cands, tasks, seed }) => {
            expect(run(name, cands, tasks, seed).results).toEqual(run(name, cands, tasks, seed).results);
          }),
          100,
        );
      });

      it('release() gives back exactly one credit, never more than total', () => {
        assertProperty(
          fc.property(candidatesArb, fc.integer(), (cands, seed) => {
            const picker = createPolicy(name, CONFIGS[name], { random: seededRandom(seed) }).buildPicker(cands, 0);
            const before = picker.credits('a');
            const r = picker.pick({ kind: 'a', priority: 'normal' });
            if (r.type !== 'route') return;
            expect(picker.credits('a')).toBe(before - 1);
            picker.release(r.candidate, 'a');
            expect(picker.credits('a')).toBe(before);
            // A stray release may restore up to total, never beyond.
            const c = cands.find((x) => x.id === r.candidate)!;
            const whole = (s: { free: number; total: number }) => Math.max(0, Math.min(Math.floor(s.free), s.total));
            const room = (s: { free: number; total: number } | undefined) => s === undefined || whole(s) < s.total;
            const more = room(c.slots.get('a')) && room(c.sharedSlots) ? 1 : 0;
            picker.release(r.candidate, 'a');
            expect(picker.credits('a')).toBe(before + more);
            picker.release('no-such-candidate', 'a');
            expect(picker.credits('a')).toBe(before + more);
          }),
        );
      });

      it('rejects a task without a kind', () => {
        const picker = createPolicy(name, CONFIGS[name], { random: seededRandom(1) }).buildPicker([], 0);
        expect(picker.pick({ kind: '', priority: 'low' })).toMatchObject({ type: 'reject', code: 'INVALID_ARGUMENT' });
      });
    });
  }
});
