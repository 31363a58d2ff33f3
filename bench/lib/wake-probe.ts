// What one wakeup of an idle Node process costs on this machine right now: a fresh `node` process sleeps
// on an empty 2 ms timer WAKES times and reports its CPU per wakeup (process.cpuUsage). At low rates a
// mesh process wakes about twice per task, so this cost moves CPU per task from one run to the next:
// read a paced pass's CPU per task beside the probe taken next to it (docs/performance.md, "Session 12: the paced swing").
import { execFile } from 'node:child_process';

const WAKES = 500;
const PROBE = `
const n0 = ${WAKES};
const vcs = () => { try { return Number(/voluntary_ctxt_switches:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/task/' + process.pid + '/status', 'utf8'))[1]); } catch { return NaN; } };
let n = 0;
// Settle first (start-up work), then measure.
setTimeout(() => {
  const c0 = process.cpuUsage();
  const v0 = vcs();
  const t = setInterval(() => {
    if (++n < n0) return;
    clearInterval(t);
    const c = process.cpuUsage(c0);
    process.stdout.write(JSON.stringify({ us: (c.user + c.system) / n0, sys: c.system / n0, vcs: (vcs() - v0) / n0 }));
  }, 2);
}, 50);
`;

export interface WakeProbe {
  /** CPU µs per empty timer wakeup (user + system), and of it in the kernel. */
  usPerWakeup: number;
  sysUsPerWakeup: number;
  /** Voluntary context switches per timer firing (1: it slept every time). */
  switchesPerWakeup: number;
}

export const NO_PROBE: WakeProbe = { usPerWakeup: NaN, sysUsPerWakeup: NaN, switchesPerWakeup: NaN };

export function wakeProbe(): Promise<WakeProbe> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', PROBE], { timeout: 10_000 }, (err, stdout) => {
      if (err) return resolve(NO_PROBE);
      try {
        const r = JSON.parse(stdout) as { us: number; sys: number; vcs: number };
        const r1 = (x: number): number => Math.round(x * 10) / 10;
        resolve({ usPerWakeup: r1(r.us), sysUsPerWakeup: r1(r.sys), switchesPerWakeup: r1(r.vcs) });
      } catch {
        resolve(NO_PROBE);
      }
    });
  });
}
