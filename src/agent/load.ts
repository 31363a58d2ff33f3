// Load figures an agent reports in its heartbeats. Sampling is shared by every
// agent in the process (agent-sim runs thousands) and refreshed at most every
// 250 ms, so a heartbeat costs a field read, not a syscall.
import os from 'node:os';

interface LoadSample {
  /** 0..1: the host's 1-minute load per core, or this process's CPU share when loadavg is unavailable. */
  cpu: number;
  /** 0..1: the host's memory in use. */
  memory: number;
}

const REFRESH_MS = 250;
const cores = Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
let last: LoadSample = { cpu: 0, memory: 0 };
let lastAt = 0;
let lastCpu = process.cpuUsage();
let lastCpuAt = performance.now();

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : Number.isFinite(x) ? x : 0);

export function sampleLoad(): LoadSample {
  const now = performance.now();
  if (now - lastAt < REFRESH_MS) return last;
  const usage = process.cpuUsage();
  const elapsedMicros = (now - lastCpuAt) * 1000;
  const processShare =
    elapsedMicros > 0 ? (usage.user + usage.system - lastCpu.user - lastCpu.system) / elapsedMicros / cores : 0;
  lastCpu = usage;
  lastCpuAt = now;
  const avg = os.loadavg()[0] ?? 0;
  const cpu = avg > 0 ? clamp01(Math.max(avg / cores, processShare)) : clamp01(processShare);
  const total = os.totalmem();
  const memory = total > 0 ? clamp01(1 - os.freemem() / total) : 0;
  last = { cpu, memory };
  lastAt = now;
  return last;
}
