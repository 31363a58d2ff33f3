// A bound on the CPU time a test spends, not on the wall clock: for tests that
// compute on virtual time in this process (the mesh simulator's seeds), whose
// wall time on a loaded 2-core machine is their CPU time times the load. A run
// past its budget is called hung and fails; the vitest timeout around it is
// only the guard for a hang that spins nothing (WALL_GUARD_MS).
// process.cpuUsage counts this worker process: with the forks pool each test
// file runs alone in its own.

/** The outer wall-clock guard of a test bounded by CPU time (a promise that never settles). */
export const WALL_GUARD_MS = 30 * 60_000;

export async function withinCpu<T>(budgetMs: number, what: string, run: () => Promise<T>): Promise<T> {
  const start = process.cpuUsage();
  const spent = (): number => {
    const u = process.cpuUsage(start);
    return (u.user + u.system) / 1000;
  };
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      if (spent() > budgetMs) reject(new Error(`${what}: past its CPU budget of ${budgetMs} ms (hung?)`));
    }, 1000);
  });
  try {
    return await Promise.race([run(), watchdog]);
  } finally {
    clearInterval(timer);
  }
}

/** CPU ms this process spent since the call: the bound for a synchronous test (nothing can interrupt it). */
export function cpuClock(): () => number {
  const start = process.cpuUsage();
  return () => {
    const u = process.cpuUsage(start);
    return (u.user + u.system) / 1000;
  };
}
