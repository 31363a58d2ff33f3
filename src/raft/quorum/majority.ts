// Majority-quorum arithmetic, kept apart from the state machine so it can be
// table-tested on its own. Single-server membership changes (no joint
// consensus) mean one majority configuration is all we ever need.

import type { NodeId } from '../core/types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/** Smallest number of voters that forms a majority of `n`. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index that a majority of `voters` has matched: the index a leader
 * may consider committed (subject to the current-term rule, which is the
 * caller's). An empty configuration commits nothing.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  // Descending order: the entry at position majority-1 is held by at least a
  // majority (itself and everyone before it).
  return matches[majority(n) - 1]!;
}

/**
 * Tally of a (pre-)vote: `won` once a majority granted, `lost` once a majority
 * can no longer be reached, `pending` otherwise. Votes from non-voters are
 * ignored. An empty configuration can never win.
 */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const n = voters.length;
  if (n === 0) return 'lost';
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = majority(n);
  if (granted >= q) return 'won';
  if (n - rejected < q) return 'lost';
  return 'pending';
}

/** True when the voters for which `active(id)` holds form a majority. */
export function quorumActive(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  if (voters.length === 0) return false;
  let n = 0;
  for (const id of voters) if (active(id)) n++;
  return n >= majority(voters.length);
}
