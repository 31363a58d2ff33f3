// V8 settings for a process that runs cells (`meshlb serve`, the bench's cell processes).
//
// Allocation-site pretenuring: V8 watches which allocation sites' objects survive scavenges and, past a
// threshold, allocates that site's objects straight in the old generation. A cell's per-task objects (a
// decoded spec, a ledger record, a queue entry, a submit's outcomes) live a few milliseconds, but the ones
// in flight at a scavenge survive it, and at thousands of tasks a second enough do for V8 to pretenure
// their sites: every later one of them is then old-generation garbage, and the old generation fills
// until a mark-compact pauses the cell. At half of peak the root took in ~1.9 KB of old generation per
// task and the node ~1.1 KB, each with a mark-compact per 10 s; without pretenuring 0.27-0.29 and
// 0.6-0.7 KB, and none (docs/performance.md, "Half of peak: hops, and pretenuring"). MESHLB_PRETENURE=1 keeps V8's
// default.
import { setFlagsFromString } from 'node:v8';

/** Turn off allocation-site pretenuring in this process (unless MESHLB_PRETENURE=1); call before the cells start. */
export function cellHeapFlags(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.MESHLB_PRETENURE === '1') return false;
  setFlagsFromString('--no-allocation-site-pretenuring');
  return true;
}
