// The meshlb entry a test starts `meshlb serve` and `agent-sim` processes from, when
// the test is about what the product does and not about how a checkout loads it:
// the built dist/src/cli/main.js when test/global-setup.ts found dist/ as new as
// every source (MESHLB_TEST_ENTRY), else bin/meshlb.js, which runs the sources
// through tsx (about a second of CPU more per process).
import { join } from 'node:path';

export const MESHLB_ENTRY = process.env.MESHLB_TEST_ENTRY || join(import.meta.dirname, '..', '..', 'bin', 'meshlb.js');
