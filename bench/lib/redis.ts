// A throwaway redis-server for bench:peers: Debian's binary on a free loopback
// port, no persistence (no RDB snapshots, no AOF), stopped when the bench ends,
// on Ctrl-C and on errors. The bench installs nothing: without redis-server it
// says how to get it and skips the peer.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from './ports.js';

export const REDIS_MISSING =
  "redis-server not found: BullMQ is skipped. To measure it, install Debian's Redis (as root: apt-get install -y redis-server; the bench starts and stops its own instance, the system service is not needed) or put redis-server on PATH.";

/** The redis-server binary on PATH, or '' when there is none. */
export function findRedisServer(): string {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

export { freePort };

export interface Redis {
  readonly port: number;
  readonly pid: number;
  readonly version: string;
  stop(): Promise<void>;
}

/** The redis-server arguments: loopback only, nothing written to disk, no protected-mode surprises. */
export function redisArgs(port: number): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    '/tmp',
    '--protected-mode',
    'yes',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
    // BullMQ requires it; the default policy would evict queue keys under memory pressure.
    '--maxmemory-policy',
    'noeviction',
  ];
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Kill every Redis this process started when it exits, however it exits. */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = (): void => {
    for (const c of live) c.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
}

/** Start redis-server and wait until it answers PING (bounded: 10 s). */
export async function startRedis(bin: string): Promise<Redis> {
  hookExit();
  const port = await freePort();
  const child = spawn(bin, redisArgs(port), { stdio: ['ignore', 'ignore', 'inherit'] });
  live.add(child);
  const exited = new Promise<void>((r) => child.on('exit', () => (live.delete(child), r())));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  const by = Date.now() + 10_000;
  for (;;) {
    const info = await command(port, 'INFO server').catch(() => '');
    const v = /redis_version:(\S+)/.exec(info);
    if (v) return { port, pid: child.pid!, version: v[1]!, stop };
    if (child.exitCode !== null || Date.now() > by) {
      await stop();
      throw new Error(`redis-server on port ${port} did not answer in 10 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One inline command, its raw reply (enough for INFO and PING). */
function command(port: number, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.setTimeout(1000, () => s.destroy(new Error('timeout')));
    s.on('error', reject);
    s.on('connect', () => s.write(`${cmd}\r\n`));
    s.on('data', (d) => {
      out += d.toString();
      // A bulk reply: $<len>\r\n<body>\r\n; done once the body is in.
      const m = /^\$(\d+)\r\n/.exec(out);
      if (!m || out.length >= m[0].length + Number(m[1]) + 2) {
        s.end();
        resolve(out);
      }
    });
  });
}
