// Child process for the crash-durability test: appends batches of entries in a
// bounded loop and prints "durable <lastIndex>" after each append resolves. The
// parent SIGKILLs it mid-loop and checks that everything reported is on disk.
import { EntryType, type Entry } from '../../../src/raft/core/types.js';
import { LmdbStorage } from '../../../src/raft/storage/index.js';

export function payload(index: number): Uint8Array {
  return new TextEncoder().encode(`entry-${index}-${'x'.repeat(index % 50)}`);
}

async function main(): Promise<void> {
  const dir = process.argv[2]!;
  const store = LmdbStorage.open({ dir });
  let next = store.lastIndex() + 1;
  for (let round = 0; round < 20_000; round++) {
    const batch: Entry[] = [];
    const n = 1 + (round % 7);
    for (let k = 0; k < n; k++, next++)
      batch.push({ index: next, term: 1, type: EntryType.Normal, data: payload(next) });
    // Commit trails the appended entries by a few, like a real follower's.
    await store.append(batch, { term: 1, vote: 'a', commit: Math.max(0, next - 5) });
    process.stdout.write(`durable ${next - 1}\n`);
  }
  await store.close();
}

if (process.argv[2]) void main();
