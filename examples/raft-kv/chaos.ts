// The kill-the-leader drill shared by `npm run raft:demo` and the e2e test:
// three server.ts processes on 127.0.0.1, writers that count a write only
// once the cluster acknowledged it (applied after commit), SIGKILL of the
// current leader again and again (restarting it each time), then every
// acknowledged write is read back through a linearizable read on every replica.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RaftRole, type RaftServiceStatusResponse } from '../../src/gen/meshlb/v1/raft.js';
import { freePort, poll, Replica } from './cluster.js';
import { call, type DumpResponse, type PutResponse } from './service.js';

export interface ChaosOptions {
  readonly kills: number;
  readonly writers: number;
  /** Acknowledged writes required between kills, so every round kills a leader under load. */
  readonly writesBetweenKills?: number;
  readonly log?: (line: string) => void;
}

export interface ChaosResult {
  readonly failoversMs: number[];
  readonly acked: number;
  readonly lost: string[];
  readonly replicasChecked: number;
}

export async function runKillChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? (() => undefined);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-raft-demo-'));
  const ids = ['n1', 'n2', 'n3'];
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(',');
  const reps = ids.map((id, i) => new Replica(id, ports[i]!, path.join(root, id), peers));
  const acked = new Map<string, string>();
  let leader: Replica | undefined;
  let stop = false;
  const failoversMs: number[] = [];
  try {
    await Promise.all(reps.map((r) => r.start()));
    log(`3 replicas up on ports ${ports.join(', ')}; data in ${root}`);

    /** The leader every live replica agrees on (and which says it is leader), with its status. */
    const agreed = async () => {
      const st = await Promise.all(reps.map((r) => (r.proc ? r.getStatus() : Promise.resolve(undefined))));
      const live = st.filter((s): s is RaftServiceStatusResponse => s !== undefined);
      const l = live.find((s) => s.role === RaftRole.RAFT_ROLE_LEADER);
      if (!l || live.length < reps.filter((r) => r.proc).length || live.some((s) => s.leaderId !== l.nodeId))
        return undefined;
      return { rep: reps.find((r) => r.id === l.nodeId)!, st: l, all: live };
    };

    const writer = async (w: number) => {
      for (let seq = 0; !stop; seq++) {
        const key = `w${w}-${seq}`;
        const value = `${key}@${Date.now()}`;
        for (let attempt = 0; !stop; attempt++) {
          const target = leader ?? reps[(w + attempt) % reps.length]!;
          try {
            await call<unknown, PutResponse>(target.kv, 'put', { key, value }, 3_000);
            acked.set(key, value);
            break;
          } catch {
            // Not acknowledged: maybe applied, maybe not; retrying the same put is idempotent.
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      }
    };

    leader = (await poll(agreed, 15_000, 'first leader')).rep;
    const writers = Array.from({ length: opts.writers }, (_, w) => writer(w));
    const between = opts.writesBetweenKills ?? 50;
    for (let k = 1; k <= opts.kills; k++) {
      const before = acked.size;
      const cur = await poll(
        async () => {
          const a = await agreed();
          // Every replica caught up (so a kill never strands the only copy of a lagging log) and writes flowing.
          if (!a || acked.size < before + between) return undefined;
          return a.all.every((s) => s.applied + 50 >= a.st.commit) ? a : undefined;
        },
        30_000,
        `a stable leader and ${between} new acknowledged writes before kill ${k}`,
      );
      leader = cur.rep;
      const victim = cur.rep;
      const t0 = performance.now();
      await victim.kill();
      leader = undefined;
      const next = await poll(
        async () => {
          const st = await Promise.all(reps.filter((r) => r.proc).map((r) => r.getStatus(100)));
          return st.find((s) => s && s.role === RaftRole.RAFT_ROLE_LEADER && s.term > cur.st.term);
        },
        10_000,
        `a new leader after kill ${k}`,
        5,
      );
      const ms = performance.now() - t0;
      failoversMs.push(ms);
      leader = reps.find((r) => r.id === next.nodeId);
      log(
        `kill ${k}/${opts.kills}: killed ${victim.id} (term ${cur.st.term}); ${next.nodeId} leads term ${next.term} after ${ms.toFixed(0)} ms; ${acked.size} writes acknowledged`,
      );
      await victim.start();
    }
    stop = true;
    await Promise.all(writers);
    await poll(agreed, 15_000, 'a final leader');
    // Read back through a linearizable read on every replica.
    const lost = new Set<string>();
    for (const r of reps) {
      const dump = await poll(
        () => call<unknown, DumpResponse>(r.kv, 'dump', {}, 5_000).catch(() => undefined),
        20_000,
        `dump of ${r.id}`,
        50,
      );
      const data = new Map(dump.entries);
      for (const [k, v] of acked) if (data.get(k) !== v) lost.add(`${r.id}:${k}`);
    }
    return { failoversMs, acked: acked.size, lost: [...lost], replicasChecked: reps.length };
  } finally {
    stop = true;
    for (const r of reps) {
      await r.kill();
      r.status.close();
      r.kv.close();
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}
