// The network-namespace lab lives in the product (src/cli/netns.ts: `meshlb
// sim --netns` uses it too); this re-exports it for the partition tests and
// adds the tests' own policy: when to skip, when to fail.
import { probeNetns } from '../../src/cli/netns.js';

export {
  NetnsLab,
  probeNetns,
  sweepStale,
  type LabProcess,
  type Member,
  type NetnsLabOptions,
  type NetnsProbe,
} from '../../src/cli/netns.js';

/**
 * How a netns test should behave on this machine: run; skip with the reason
 * printed (MESHLB_NO_NETNS=1, or a developer's machine without root outside
 * CI, so `npm test` passes for a newcomer); or fail with a clear message —
 * under CI (CI=true, where we run as root) a missing capability is a failure,
 * never a silent pass.
 */
export function netnsGate(): { skip: boolean; failure: string | undefined } {
  const p = probeNetns();
  if (p.ok) return { skip: false, failure: undefined };
  const notRoot = typeof process.getuid === 'function' && process.getuid() !== 0;
  if (process.env.MESHLB_NO_NETNS === '1' || (notRoot && !process.env.CI)) {
    console.warn(`netns partition tests SKIPPED: ${p.reason} (they run as root, as in CI)`);
    return { skip: true, failure: undefined };
  }
  return {
    skip: false,
    failure: `${p.reason}. These tests need root and a working \`ip netns\` (iproute2); set MESHLB_NO_NETNS=1 to skip them explicitly.`,
  };
}
