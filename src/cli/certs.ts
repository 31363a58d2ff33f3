// `meshlb certs --topology FILE --out DIR`: a development CA and one
// certificate per replica (src/security/certs.ts does the openssl work); then
// prints the `security:` lines that point the topology at them.
import { dirname, relative } from 'node:path';
import { makeCerts } from '../security/certs.js';
import { loadTopology } from '../topology/parse.js';

export interface CertsCliOptions {
  topologyFile: string;
  outDir: string;
  days?: number;
  extraSans?: readonly string[];
  newCa?: boolean;
  stdout?: (line: string) => void;
}

export async function runCerts(o: CertsCliOptions): Promise<number> {
  const out = o.stdout ?? ((l: string) => process.stdout.write(`${l}\n`));
  const topology = loadTopology(o.topologyFile);
  const r = await makeCerts({
    topology,
    outDir: o.outDir,
    ...(o.days !== undefined ? { days: o.days } : {}),
    ...(o.extraSans ? { extraSans: o.extraSans } : {}),
    ...(o.newCa ? { newCa: true } : {}),
  });
  out(
    `${r.caReused ? 'kept the CA' : 'made a new CA'} ${r.ca}; ${r.replicas.length} replica certificates in ${o.outDir}`,
  );
  for (const x of r.replicas) out(`  ${x.id.padEnd(24)} ${x.cert}  (${x.sans.join(', ')})`);
  const dir = relative(dirname(o.topologyFile), o.outDir) || '.';
  out('');
  out(`The CA key (${o.outDir}/ca.key) signs anything: a development CA only (docs/security.md).`);
  out('Turn mTLS on with this in the topology (paths relative to the topology file):');
  out('');
  out('security:');
  out('  tls:');
  out(`    dir: ${dir}`);
  return 0;
}
