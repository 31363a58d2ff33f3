// CPU time of this process and every process under it (the replicas, agents
// and simulators a test starts), for tests whose wall time on a loaded 2-core
// machine is their processes' CPU time times the load: bound them by that CPU
// (withinTreeCpu), with a far wall guard for a hang that spins nothing
// (cpu-budget.ts WALL_GUARD_MS). Linux: read from /proc, live processes by
// their own times plus what their reaped children spent (a child's CPU moves
// into its parent's when it exits and is waited for). Elsewhere: this
// process's CPU only.
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux this runs on). */
const HZ = 100;

/** utime + stime + cutime + cstime (ticks) and the parent pid, from /proc/<pid>/stat; undefined if gone. */
function stat(pid: string): { ppid: number; ticks: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // After the command's closing parenthesis (a command may hold spaces and parentheses): state is field 3.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
}

/** CPU ms spent so far by process `root` and all its descendants, alive or exited and reaped. */
export function treeCpuMs(root: number = process.pid): number {
  if (process.platform !== 'linux') {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const s = stat(name);
    if (s === undefined) continue;
    const pid = Number(name);
    ticks.set(pid, s.ticks);
    const list = children.get(s.ppid);
    if (list) list.push(pid);
    else children.set(s.ppid, [pid]);
  }
  let total = 0;
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    total += ticks.get(pid) ?? 0;
    for (const c of children.get(pid) ?? []) todo.push(c);
  }
  return (total * 1000) / HZ;
}

/**
 * Call `onOver` (once) when this process and its descendants have spent more than `budgetMs` of CPU
 * since the call, checked each second; returns the stop of the watch, and reads what was spent.
 */
export function cpuWatchdog(budgetMs: number, onOver: (spentMs: number) => void): { stop(): void; spent(): number } {
  const start = treeCpuMs();
  const spent = (): number => treeCpuMs() - start;
  const timer = setInterval(() => {
    const s = spent();
    if (s <= budgetMs) return;
    clearInterval(timer);
    onOver(s);
  }, 1000);
  return { stop: () => clearInterval(timer), spent };
}

/**
 * Run `run`, failing it (`what` and the figures in the message) once this process and its
 * descendants have spent more than `budgetMs` of CPU since the call: called hung. Checked each
 * second; `onOver` runs first (to kill what the test started).
 */
export async function withinTreeCpu<T>(
  budgetMs: number,
  what: string,
  run: () => Promise<T>,
  onOver: () => void = () => undefined,
): Promise<T> {
  const t0 = Date.now();
  let watch: { stop(): void } | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    watch = cpuWatchdog(budgetMs, (spent) => {
      onOver();
      reject(
        new Error(
          `${what}: past its CPU budget of ${budgetMs} ms (${Math.round(spent)} ms in ${Date.now() - t0} ms of wall time; hung?)`,
        ),
      );
    });
  });
  try {
    return await Promise.race([run(), watchdog]);
  } finally {
    watch?.stop();
  }
}
