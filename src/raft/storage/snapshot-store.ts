// Snapshots as files: one file per snapshot, named by index so the latest sorts
// last. Layout: magic(8) | sha256(32) over the rest | metaLen u32 | meta JSON | data.
// Written via temp file + fsync + rename + directory fsync, so a crash leaves
// either the old set of files or the new one, never a half-written snapshot
// under a final name.
//
// Saves can overlap: a replica's background snapshot and one received from the
// leader, or a stopped replica's unfinished save and its restarted successor's
// (a second store on the same directory). So a store runs its saves one at a
// time, each save writes a temp file of its own (`<final>.<pid>-<tag>.tmp`),
// and a prune removes a temp file only when no save can still be writing it:
// not one in flight in this process (any store), and not one of another
// process that is alive. Leftovers of a crash are removed by the next save.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Snapshot, SnapshotMeta } from '../core/types.js';
import { SnapshotCorruptError, type SnapshotStore } from './ports.js';

const MAGIC = Buffer.from('MLBSNAP1', 'ascii');
const HEAD = MAGIC.length + 32 + 4;
const NAME = /^snap-(\d{20})-(\d+)\.snap$/;
/** A temp file; the owner (`.<pid>-<tag>`) is absent in names written before saves were tagged. */
const TMP = /^snap-\d{20}-\d+\.snap(?:\.(\d+)-[\w-]+)?\.tmp$/;

/** Temp files (absolute paths) of saves in flight in this process, across all stores. */
const writing = new Set<string>();
/** Tags this process's temp files apart from an earlier process's with the same pid (containers). */
const processTag = randomBytes(4).toString('hex');
let saves = 0;

export class FileSnapshotStore implements SnapshotStore {
  private cached: Snapshot | undefined;
  private cachedMeta: SnapshotMeta | undefined;
  private loaded = false;
  /** The save in progress (saves are serialized, see save()). */
  private queue: Promise<void> = Promise.resolve();

  /** `retain`: how many snapshot files to keep (older ones are a fallback for operators, not read). */
  constructor(
    readonly dir: string,
    private readonly retain = 2,
  ) {
    fs.mkdirSync(dir, { recursive: true });
  }

  /** Saves run one at a time, in call order; a failed save does not stop the next. */
  save(snap: Snapshot): Promise<void> {
    const run = this.queue.then(() => this.write(snap));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(snap: Snapshot): Promise<void> {
    const meta = Buffer.from(JSON.stringify(snap.meta), 'utf8');
    const body = Buffer.allocUnsafe(4 + meta.length + snap.data.length);
    body.writeUInt32BE(meta.length, 0);
    meta.copy(body, 4);
    body.set(snap.data, 4 + meta.length);
    const sum = createHash('sha256').update(body).digest();
    const name = `snap-${String(snap.meta.index).padStart(20, '0')}-${snap.meta.term}.snap`;
    const final = path.join(this.dir, name);
    const tmp = path.resolve(`${final}.${process.pid}-${processTag}${(saves++).toString(36)}.tmp`);
    writing.add(tmp);
    try {
      const fh = await fs.promises.open(tmp, 'w');
      try {
        await fh.writev([MAGIC, sum, body]);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, final);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    } finally {
      writing.delete(tmp);
    }
    await fsyncDir(this.dir);
    // The latest is the highest index (what a fresh load() would pick), whatever the save order.
    if (this.loaded && (!this.cachedMeta || snap.meta.index >= this.cachedMeta.index)) {
      this.cached = snap;
      this.cachedMeta = snap.meta;
    }
    await this.prune();
  }

  load(): Snapshot | undefined {
    if (this.loaded) return this.cached;
    const latest = this.files().at(-1);
    this.loaded = true;
    if (!latest) return undefined;
    this.cached = readSnapshotFile(path.join(this.dir, latest));
    this.cachedMeta = this.cached.meta;
    return this.cached;
  }

  latestMeta(): SnapshotMeta | undefined {
    if (!this.loaded) this.load();
    return this.cachedMeta;
  }

  private files(): string[] {
    return fs
      .readdirSync(this.dir)
      .filter((f) => NAME.test(f))
      .sort();
  }

  /** Keep the `retain` latest snapshots; remove temp files no save is writing any more. */
  private async prune(): Promise<void> {
    for (const f of fs.readdirSync(this.dir)) {
      const m = TMP.exec(f);
      const file = path.resolve(this.dir, f);
      if (m && !writing.has(file) && !ownerAlive(m[1])) await fs.promises.rm(file, { force: true });
    }
    const files = this.files();
    for (const f of files.slice(0, Math.max(0, files.length - this.retain))) {
      await fs.promises.rm(path.join(this.dir, f), { force: true });
    }
  }
}

/**
 * Whether the process that named a temp file may still be writing it. This
 * process's own files are known exactly (`writing`); another pid is asked with
 * signal 0. A dead pid reused by an unrelated process only delays the cleanup.
 */
function ownerAlive(pid: string | undefined): boolean {
  if (pid === undefined || Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readSnapshotFile(file: string): Snapshot {
  const buf = fs.readFileSync(file);
  if (buf.length < HEAD || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SnapshotCorruptError(file, 'bad magic or truncated header');
  }
  const sum = buf.subarray(MAGIC.length, MAGIC.length + 32);
  const body = buf.subarray(MAGIC.length + 32);
  if (!createHash('sha256').update(body).digest().equals(sum)) {
    throw new SnapshotCorruptError(file, 'sha256 checksum mismatch');
  }
  const metaLen = body.readUInt32BE(0);
  if (4 + metaLen > body.length) throw new SnapshotCorruptError(file, 'metadata length out of range');
  const meta = JSON.parse(body.subarray(4, 4 + metaLen).toString('utf8')) as SnapshotMeta;
  return { meta, data: new Uint8Array(body.subarray(4 + metaLen)) };
}

/** fsync a directory so a rename inside it survives power loss. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
