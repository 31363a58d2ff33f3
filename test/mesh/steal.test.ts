// The parent's half of work stealing (src/mesh/steal.ts): who is asked, for how many.
import { describe, expect, it } from 'vitest';
import { planSteals, type StealView } from '../../src/mesh/steal.js';

const v = (cell: string, credit: number, queued: number, askable = true): StealView => ({
  cell,
  credit,
  queued,
  askable,
});

describe('planSteals', () => {
  it('asks the most loaded child first, for no more than the idle room', () => {
    const asks = planSteals('k', [v('a', 0, 5), v('b', 0, 20), v('c', 8, 0)], 0, 32);
    expect(asks).toEqual([{ cell: 'b', kind: 'k', max: 8 }]);
  });

  it('spreads the room over loaded children, at most a batch from each', () => {
    const asks = planSteals('k', [v('a', 0, 50), v('b', 0, 50), v('c', 40, 0), v('d', 30, 0)], 0, 32);
    expect(asks).toEqual([
      { cell: 'a', kind: 'k', max: 32 },
      { cell: 'b', kind: 'k', max: 32 },
    ]);
  });

  it('asks nobody without an idle child, while the parent queues the kind itself, when off, or not yet again', () => {
    expect(planSteals('k', [v('a', 0, 5), v('b', 0, 3)], 0, 32)).toEqual([]);
    expect(planSteals('k', [v('a', 0, 5), v('b', 4, 0)], 2, 32)).toEqual([]);
    expect(planSteals('k', [v('a', 0, 5), v('b', 4, 0)], 0, 0)).toEqual([]);
    expect(planSteals('k', [v('a', 0, 5, false), v('b', 4, 0)], 0, 32)).toEqual([]);
    // A child with room that also queues is not idle: its room is not counted.
    expect(planSteals('k', [v('a', 0, 5), v('b', 4, 1)], 0, 32)).toEqual([]);
  });
});
