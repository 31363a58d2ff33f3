// Reading another process's CPU time and memory from /proc (Linux): for
// processes that cannot report over IPC (redis-server) and to compare them on
// the same footing as those that can. Elsewhere every figure is NaN.
import { readFileSync } from 'node:fs';

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ: 100 on every Linux this runs on). */
export const USER_HZ = 100;

/**
 * utime + stime (fields 14 and 15 of /proc/<pid>/stat), in clock ticks, summed
 * over all the process's threads. The command name (field 2) sits in
 * parentheses and may hold spaces and ')', so fields are counted from the last ')'.
 */
export function parseStatCpuTicks(stat: string): number {
  const end = stat.lastIndexOf(')');
  if (end < 0) return Number.NaN;
  // After ") ": field 3 (state) is index 0, so utime (14) is index 11, stime (15) index 12.
  const f = stat
    .slice(end + 2)
    .trim()
    .split(/\s+/);
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : Number.NaN;
}

/** A field of /proc/<pid>/status in kB (e.g. 'VmRSS', 'VmHWM'), as MiB; NaN if absent. */
export function parseStatusMiB(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** CPU time (user + system) the process has used so far, µs; NaN if it is gone or not on Linux. */
export function procCpuUs(pid: number): number {
  return (parseStatCpuTicks(read(`/proc/${pid}/stat`)) * 1e6) / USER_HZ;
}

/** Resident memory now (VmRSS), MiB. */
export function procRssMiB(pid: number): number {
  return parseStatusMiB(read(`/proc/${pid}/status`), 'VmRSS');
}

/** Peak resident memory (VmHWM), MiB. */
export function procPeakRssMiB(pid: number): number {
  return parseStatusMiB(read(`/proc/${pid}/status`), 'VmHWM');
}
