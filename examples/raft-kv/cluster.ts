// Process handles for the demo KV cluster (shared by the kill drill and the
// Raft benchmark): spawn a server.ts, wait for READY, SIGKILL, Status.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { RaftServiceClient, type RaftServiceStatusResponse } from '../../src/gen/meshlb/v1/raft.js';
import { RaftKvClient } from './service.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const GROUP = 'demo';

export class Replica {
  proc: ChildProcess | undefined;
  readonly status: RaftServiceClient;
  readonly kv: grpc.Client;
  constructor(
    readonly id: string,
    readonly port: number,
    readonly dir: string,
    readonly peers: string,
  ) {
    this.status = new RaftServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 500,
    });
    this.kv = new RaftKvClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 500,
    });
  }

  start(): Promise<void> {
    // node --import tsx (not the tsx CLI): the pid we SIGKILL is the server itself, not a wrapper.
    // MESHLB_RAFT_NODE_ARGS: extra node flags for the servers (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
    const extra = (process.env.MESHLB_RAFT_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const args = [
      ...extra,
      '--import',
      'tsx',
      path.join(here, 'server.ts'),
      '--id',
      this.id,
      '--port',
      String(this.port),
      '--dir',
      this.dir,
      '--peers',
      this.peers,
    ];
    const proc = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, MESHLB_LOG_LEVEL: process.env.MESHLB_LOG_LEVEL ?? 'warn' },
    });
    this.proc = proc;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.id} did not start within 20 s`)), 20_000);
      proc.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('READY')) {
          clearTimeout(t);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`${this.id} exited early (${code})`));
      });
    });
  }

  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  getStatus(deadlineMs = 300): Promise<RaftServiceStatusResponse | undefined> {
    return new Promise((resolve) =>
      this.status.status({ groupId: GROUP }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) =>
        resolve(err ? undefined : res),
      ),
    );
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Poll until `fn` returns a value; bounded. The poll interval is a sampling rate, not a guess at timing. */
export async function poll<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  everyMs = 10,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
