// Snapshots as files: one file per snapshot, named by index so the latest sorts
// last. Layout: magic(8) | sha256(32) over the rest | metaLen u32 | meta JSON | data.
// Written via temp file + fsync + rename + directory fsync, so a crash leaves
// either the old set of files or the new one, never a half-written snapshot
// under a final name (a stray *.tmp is ignored and removed on the next save).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Snapshot, SnapshotMeta } from '../core/types.js';
import { SnapshotCorruptError, type SnapshotStore } from './ports.js';

const MAGIC = Buffer.from('MLBSNAP1', 'ascii');
const HEAD = MAGIC.length + 32 + 4;
const NAME = /^snap-(\d{20})-(\d+)\.snap$/;

export class FileSnapshotStore implements SnapshotStore {
  private cached: Snapshot | undefined;
  private cachedMeta: SnapshotMeta | undefined;
  private loaded = false;

  /** `retain`: how many snapshot files to keep (older ones are a fallback for operators, not read). */
  constructor(
    readonly dir: string,
    private readonly retain = 2,
  ) {
    fs.mkdirSync(dir, { recursive: true });
  }

  async save(snap: Snapshot): Promise<void> {
    const meta = Buffer.from(JSON.stringify(snap.meta), 'utf8');
    const body = Buffer.allocUnsafe(4 + meta.length + snap.data.length);
    body.writeUInt32BE(meta.length, 0);
    meta.copy(body, 4);
    body.set(snap.data, 4 + meta.length);
    const sum = createHash('sha256').update(body).digest();
    const name = `snap-${String(snap.meta.index).padStart(20, '0')}-${snap.meta.term}.snap`;
    const final = path.join(this.dir, name);
    const tmp = `${final}.tmp`;
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await fh.writev([MAGIC, sum, body]);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, final);
    await fsyncDir(this.dir);
    this.cached = snap;
    this.cachedMeta = snap.meta;
    this.loaded = true;
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

  private async prune(): Promise<void> {
    for (const f of fs.readdirSync(this.dir)) {
      if (f.endsWith('.tmp')) await fs.promises.rm(path.join(this.dir, f), { force: true });
    }
    const files = this.files();
    for (const f of files.slice(0, Math.max(0, files.length - this.retain))) {
      await fs.promises.rm(path.join(this.dir, f), { force: true });
    }
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
