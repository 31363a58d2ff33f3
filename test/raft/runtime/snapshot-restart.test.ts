// A replica stopped while it writes a snapshot, restarted at once on the same
// directory (what a process restart or the mesh's replica restart does): stop()
// waits for the write in flight, so the successor never races it, and the
// restarted replica rebuilds from that snapshot and catches up.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RawNode } from '../../../src/raft/core/raft.js';
import type { Ready } from '../../../src/raft/core/types.js';
import { MemoryNetwork, RaftReplica, ShuttingDownError } from '../../../src/raft/index.js';
import { LmdbStorage } from '../../../src/raft/storage/index.js';
import { KvStateMachine, putCommand } from '../../../examples/raft-kv/state.js';
import { waitFor } from '../../helpers/wait.js';
import { TestCluster } from './cluster.js';

/** The KV state machine with its snapshot padded, so writing one takes long enough to stop in the middle. */
class PaddedKv extends KvStateMachine {
  constructor(private readonly pad: number) {
    super();
  }

  override snapshot(): Uint8Array {
    const kv = super.snapshot();
    const out = new Uint8Array(4 + kv.length + this.pad);
    new DataView(out.buffer).setUint32(0, kv.length);
    out.set(kv, 4);
    return out;
  }

  override restore(snap: Uint8Array): void {
    const n = snap.length < 4 ? 0 : new DataView(snap.buffer, snap.byteOffset, snap.byteLength).getUint32(0);
    super.restore(snap.subarray(4, 4 + n));
  }
}

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const files = (dir: string, suffix: string) => fs.readdirSync(dir).filter((f) => f.endsWith(suffix));

describe('RaftReplica stopped mid-snapshot', () => {
  it('stop() waits for the snapshot being written; restarted on the same directory, it recovers from it', async () => {
    cluster = new TestCluster(
      'memory',
      ['n1', 'n2', 'n3'],
      { snapshotEvery: 30, snapshotKeep: 5 },
      () => new PaddedKv(24 << 20),
    );
    await cluster.start();
    const leader = await cluster.leader();
    const f = cluster.ids.find((id) => id !== leader)!;
    const snapDir = path.join(cluster.nodes.get(f)!.dir, 'snapshots');
    const r = cluster.replica(leader);
    const writes = Promise.all(Array.from({ length: 40 }, (_, i) => r.propose(putCommand(`k${i}`, `${i}`))));
    await waitFor(() => files(snapDir, '.tmp').length > 0, { what: `${f} to start writing a snapshot` });
    await cluster.stop(f);
    // Nothing of the stopped replica is still writing in its directory.
    expect(files(snapDir, '.tmp')).toEqual([]);
    expect(files(snapDir, '.snap').length).toBeGreaterThan(0);
    await writes;
    await cluster.restart(f);
    const node = cluster.nodes.get(f)!;
    expect(node.kv.restores, 'rebuilt from its own snapshot').toBe(1);
    await cluster.replica(leader).propose(putCommand('after', 'restart'));
    await waitFor(() => node.kv.data.get('after') === 'restart' && node.kv.data.get('k39') === '39', {
      what: `${f} to catch up after its restart`,
    });
    expect(node.kv.data.size).toBe(41);
    expect(cluster.replica(f).status().applied).toBe(cluster.replica(leader).status().applied);
  });
  it('stop() after the replica failed on its own still closes its transport and storage', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-raft-fail-'));
    try {
      const log = LmdbStorage.open({ dir, bootstrap: { a: 'mem:a' } });
      const logClose = vi.spyOn(log, 'close');
      const t = new MemoryNetwork().transport('a');
      const transportClose = vi.spyOn(t, 'close');
      class FailingCore extends RawNode {
        override ready(): Ready {
          throw new Error('disk on fire');
        }
      }
      const r = new RaftReplica({
        groupId: 'g',
        id: 'a',
        peers: { a: 'mem:a' },
        storage: { log, snapshots: log.snapshots },
        stateMachine: new KvStateMachine(),
        transport: t,
        core: (cfg) => new FailingCore(cfg),
      });
      await waitFor(
        async () =>
          (await r.propose(putCommand('k', 'v'), { timeoutMs: 20 }).catch((e: unknown) => e)) instanceof
          ShuttingDownError,
        { what: 'the replica to fail on its first Ready' },
      );
      await Promise.all([r.stop(), r.stop()]);
      expect(transportClose).toHaveBeenCalledTimes(1);
      expect(logClose).toHaveBeenCalledTimes(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
