// Whose Raft log a data directory holds. A replica writes its identity (mesh
// id, cell, replica id) beside its log the first time it opens the directory
// and refuses to start on a directory written by another: started on another
// group's log it would lead that group alone, beside the real one (a second
// leader for the same cell path). A small JSON file, not the log's format:
// an operator can read it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const IDENTITY_FILE = 'meshlb-replica.json';

/** The directory belongs to someone else (or cannot be read): an operator's mistake, said in one line. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

export interface DataDirIdentity {
  readonly meshId: string;
  readonly cell: string;
  readonly replicaId: string;
}

/** Throws when `dir` belongs to another mesh, cell or replica; claims it when new. */
export function claimDataDir(dir: string, me: DataDirIdentity): void {
  const file = join(dir, IDENTITY_FILE);
  if (existsSync(file)) {
    let theirs: Partial<DataDirIdentity>;
    try {
      theirs = JSON.parse(readFileSync(file, 'utf8')) as Partial<DataDirIdentity>;
    } catch (err) {
      throw new DataDirError(`data dir ${dir}: ${IDENTITY_FILE} is unreadable; refusing to start`, { cause: err });
    }
    if (theirs.meshId !== me.meshId || theirs.cell !== me.cell || theirs.replicaId !== me.replicaId) {
      throw new DataDirError(
        `data dir ${dir} holds replica ${String(theirs.replicaId)} of cell ${String(theirs.cell)} in mesh ` +
          `${String(theirs.meshId)}, not ${me.replicaId} of ${me.cell} in mesh ${me.meshId}: ` +
          'give this replica its own --data-dir',
      );
    }
    return;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(me, null, 2)}\n`);
}
