// The ledger's snapshot format (a LedgerSnapshot, proto/meshlb/v1/ledger.proto):
// every record in the ledger's order (acceptance order), the terminal records'
// eviction order as indexes into them, the counters, the operator's settings,
// flow control and keyed state. Ledger.snapshot()/restore() (ledger.ts) use it.
//
// Terminal records are held as their LedgerRecord encoding (ledger-retained.ts),
// so the records are written field by field: a held record's bytes go in as
// they are. The bytes are what LedgerSnapshot.encode would write for the same
// records, so snapshots of equal ledgers are equal bytes whichever way a record
// is held.
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  LedgerRecord,
  LedgerSnapshot,
  type LedgerCellConfig,
  type LedgerCounters,
  type LedgerFlow,
  type LedgerKeyed,
} from '../gen/meshlb/v1/ledger.js';
import { fromLedgerRecord, isTerminal, type TaskRecord } from './ledger-record.js';
import type { RetainedRecords } from './ledger-retained.js';

export const SNAPSHOT_VERSION = 1;

/** What a snapshot carries beside the records. */
export interface SnapshotRest {
  readonly counters: LedgerCounters;
  readonly config: LedgerCellConfig;
  readonly flow: LedgerFlow;
  readonly keyed: LedgerKeyed;
}

/** `tasks`: the ledger's map, a terminal task as its handle in `ended`. */
export function encodeSnapshot(
  tasks: Iterable<TaskRecord | number>,
  ended: RetainedRecords,
  rest: SnapshotRest,
): Uint8Array {
  const w = new BinaryWriter().uint32(8).uint32(SNAPSHOT_VERSION);
  const at = new Map<number, number>();
  let n = 0;
  for (const v of tasks) {
    if (typeof v === 'number') {
      at.set(v, n);
      w.uint32(18).bytes(ended.bytes(v));
    } else LedgerRecord.encode(v, w.uint32(18).fork()).join();
    n++;
  }
  const terminalOrder = [...ended.handles()].map((h) => at.get(h)!);
  return LedgerSnapshot.encode({ version: 0, records: [], terminalOrder, ...rest }, w).finish();
}

/** A snapshot's records and its terminal ones in eviction order; throws unless self-consistent. */
export function decodeSnapshot(bytes: Uint8Array): {
  snap: LedgerSnapshot;
  records: TaskRecord[];
  terminal: TaskRecord[];
} {
  const snap = LedgerSnapshot.decode(bytes);
  if (snap.version !== SNAPSHOT_VERSION) throw new Error(`ledger snapshot version ${snap.version} not supported`);
  const records = snap.records.map(fromLedgerRecord);
  const ids = new Set<string>();
  const terminal: TaskRecord[] = [];
  for (const i of snap.terminalOrder) {
    const rec = records[i];
    if (!rec || !isTerminal(rec.state) || ids.has(rec.id)) throw new Error(`ledger snapshot: bad terminal ${i}`);
    ids.add(rec.id);
    terminal.push(rec);
  }
  let live = 0;
  for (const rec of records) if (!isTerminal(rec.state)) live++;
  if (terminal.length + live !== new Set(records.map((r) => r.id)).size)
    throw new Error('ledger snapshot: terminal order incomplete');
  return { snap, records, terminal };
}
