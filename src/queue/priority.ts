// Task priorities, shared by the queue and the routing policies. The order of
// PRIORITIES is the order of service: index 0 is served first. Aging lowers a
// waiting task's effective index toward 0 so `low` never starves.

export const PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Priority → service rank (0 = served first). */
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = {
  critical: 0,
  high: 1,
  normal: 2,
  low: 3,
};

export function isPriority(v: unknown): v is Priority {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(PRIORITY_RANK, v);
}
