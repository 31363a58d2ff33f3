// The simulator's spill-bounce scenario: one node refuses every dispatch sent to it
// ("buffer full", while its summaries keep offering free slots), so the cell above it
// keeps choosing it and keeps being refused. Re-sends after a refusal back off
// (src/mesh/refusal-wait.ts): the first at once, then half to all of 25 ms doubling to
// a second. The same seeds run with the backoff taken out (every re-send at once, as
// before session 16) show the churn it bounds: sends of one task to the refusing node,
// at most and per second of the run. The node refuses for the first 10 s of the run
// (a node refusing for ever while it offers slots keeps a task there until the ledger's
// cap on dispatches ends it: 23 x 9 sends, minutes with the backoff); both runs must
// end every task (violations=0).
import { describe, expect, it } from 'vitest';
import { ChildLinks } from '../../../src/mesh/child-links.js';
import { RefusalWait, RESEND_MAX_MS } from '../../../src/mesh/refusal-wait.js';
import { Relay } from '../../../src/mesh/relay.js';
import type { WorkItem } from '../../../src/mesh/types.js';
import { runSeed, type SimResult } from './sim.js';

const SEEDS = [1, 2, 3];
/** How long the node refuses (virtual ms from the start of the run): then it takes work again. */
const REFUSING_MS = 10_000;

type Fn = (...args: never[]) => unknown;
function patch<T extends object>(proto: T, name: string, make: (orig: Fn) => Fn): () => void {
  const p = proto as unknown as Record<string, Fn>;
  const orig = p[name]!;
  p[name] = make(orig);
  return () => void (p[name] = orig);
}

interface Churn {
  readonly result: SimResult;
  /** Sends to the refusing node, of all tasks, and of the task sent there most. */
  readonly sends: number;
  readonly most: number;
  /** The most sends of one task to it within any one second of virtual time. */
  readonly mostInASecond: number;
}

async function run(seed: number, backoff: boolean): Promise<Churn> {
  let target = '';
  const sendsAt = new Map<string, number[]>();
  let now = () => 0;
  let start = 0;
  const undo = [
    // The refusing node: every dispatch to it is nacked for REFUSING_MS, its summaries unchanged.
    patch(
      Relay.prototype,
      'checkForwarded',
      (orig) =>
        function (this: { d: { path: string } }, ...args: never[]) {
          return this.d.path === target && now() - start < REFUSING_MS ? 'buffer full' : orig.apply(this, args);
        },
    ),
    // Count each task's dispatches to it (from the cell above it).
    patch(
      ChildLinks.prototype,
      'dispatch',
      (orig) =>
        function (this: unknown, child: string, item: WorkItem) {
          if (child === target) {
            let at = sendsAt.get(item.taskId);
            if (!at) sendsAt.set(item.taskId, (at = []));
            at.push(now());
          }
          return orig.apply(this, [child, item] as never[]);
        } as Fn,
    ),
    ...(backoff
      ? []
      : [
          patch(
            RefusalWait.prototype,
            'hold',
            (orig) =>
              function (this: unknown, item: WorkItem, by: string, why: string) {
                return orig.apply(this, [item, by, why, 1] as never[]); // every refusal the first: at once
              } as Fn,
          ),
        ]),
  ];
  try {
    const result = await runSeed({
      seed,
      raft: false,
      faults: 0,
      tamper: (mesh) => {
        const nodes = [...mesh.replicas.values()].filter((r) => r.spec.tier === 'node').map((r) => r.spec.path);
        target = nodes.sort()[0]!;
        const any = [...mesh.replicas.values()][0]!;
        now = () => any.cell.scheduler.now();
        start = now();
      },
    });
    let sends = 0;
    let most = 0;
    let mostInASecond = 0;
    for (const at of sendsAt.values()) {
      sends += at.length;
      most = Math.max(most, at.length);
      for (let i = 0, j = 0; i < at.length; i++) {
        while (at[i]! - at[j]! >= 1000) j++;
        mostInASecond = Math.max(mostInASecond, i - j + 1);
      }
    }
    return { result, sends, most, mostInASecond };
  } finally {
    for (const u of undo.reverse()) u();
  }
}

describe('mesh simulator: a node that refuses everything sent to it (spill-bounce churn)', () => {
  for (const seed of SEEDS)
    it(`seed ${seed}: re-sends back off, a few a second per task at most, and every task still ends`, async () => {
      const before = await run(seed, false);
      const after = await run(seed, true);
      console.log(
        `churn seed ${seed}: sends to the refusing node ${before.sends} -> ${after.sends}, ` +
          `most of one task ${before.most} -> ${after.most}, most of one task in a second ` +
          `${before.mostInASecond} -> ${after.mostInASecond}`,
      );
      expect(after.result.violations).toEqual([]);
      expect(before.result.violations).toEqual([]);
      // Within a second: the first re-send at once, then backoffs of at least 12, 25, 50, 100, 200, 400 ms
      // (sum 787) and 500 ms after: at most 8 sends of one attempt start within any one second, and a
      // new attempt (the last one's route ended) starts over at the cell above the node: at most 16.
      expect(after.mostInASecond).toBeLessThanOrEqual(16);
      expect(RESEND_MAX_MS).toBe(1000);
      expect(after.sends).toBeLessThan(before.sends);
    }, 120_000);
});
