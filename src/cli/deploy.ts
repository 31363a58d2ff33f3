// `meshlb deploy`: write the docker-compose and Kubernetes files generated from
// a topology (src/topology/deploy) under an output directory. Files whose text
// is unchanged are left untouched, so regenerating deploy/ is a no-op diff.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { generateDeploy, type DeployOptions } from '../topology/deploy/index.js';
import { loadTopology } from '../topology/parse.js';
import { CliFailure } from './load.js';

/** Write the generated files under outDir. */
function writeDeploy(files: Map<string, string>, outDir: string): string[] {
  const written: string[] = [];
  for (const [name, text] of files) {
    const p = join(outDir, name);
    mkdirSync(dirname(p), { recursive: true });
    let same = false;
    try {
      same = readFileSync(p, 'utf8') === text;
    } catch {
      // new file
    }
    if (!same) writeFileSync(p, text);
    written.push(p);
  }
  return written;
}

interface RunDeployOptions extends DeployOptions {
  topologyFile: string;
  outDir: string;
}

/** The source name used in headers: the topology path relative to the output dir's parent (the repo root for deploy/). */
export function sourceNameFor(topologyFile: string, outDir: string): string {
  const rel = relative(join(outDir, '..'), topologyFile).split('\\').join('/');
  return rel.startsWith('..') ? basename(topologyFile) : rel;
}

export async function runDeploy(o: RunDeployOptions): Promise<number> {
  const t = loadTopology(o.topologyFile);
  const files = generateDeploy(t, { ...o, sourceName: o.sourceName ?? sourceNameFor(o.topologyFile, o.outDir) });
  let written: string[];
  try {
    written = writeDeploy(files, o.outDir);
  } catch (err) {
    // A path that is a file, not writable, on a read-only disk: one line, not a stack.
    throw new CliFailure(`cannot write under --out ${o.outDir}: ${(err as Error).message}`);
  }
  process.stdout.write(
    `wrote ${written.length} files under ${o.outDir} (${t.cells.length} cells, ${t.cells.reduce((n, c) => n + c.replicas.length, 0)} replicas)\n`,
  );
  return 0;
}
