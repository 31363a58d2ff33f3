// Where meshlb's own files are at run time: the directory holding meshlb's package.json, found by walking up
// from a module's location. A path computed as "two levels above this module" holds in one layout only: the
// sources run in a checkout (src/cli/dev.ts -> the repository), the compiled ones sit one level deeper
// (dist/src/cli/dev.js -> dist/, where there is no deploy/ or bin/), and an installed package is under
// node_modules/meshlb. Every file the CLI reads from the package at run time (the example topologies, the
// .proto files reflection serves, bin/meshlb.js that `meshlb sim` starts its processes from) is named from
// here, so each holds in all three (test/cli/packaged.test.ts runs the compiled CLI from the image's layout).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package whose root we look for (package.json "name"). */
const NAME = 'meshlb';

/** Directories walked up at most: src/util or dist/src/util sit two or three below the root. */
const MAX_UP = 8;

const found = new Map<string, string>();

/**
 * The directory holding meshlb's package.json, above `moduleUrl` (a module's import.meta.url; this module's
 * own by default). Throws, naming where it looked, when there is none within MAX_UP levels.
 */
export function packageRoot(moduleUrl: string = import.meta.url): string {
  const start = dirname(fileURLToPath(moduleUrl));
  const known = found.get(start);
  if (known !== undefined) return known;
  let dir = start;
  for (let i = 0; i <= MAX_UP; i++) {
    if (isMeshlbPackage(join(dir, 'package.json'))) {
      found.set(start, dir);
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`cannot find meshlb's package.json above ${start}`);
}

/** A path inside the package: packagePath('deploy', 'topologies', 'example.yaml'). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

/** meshlb's version, from its package.json (what `meshlb --version` prints). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

function isMeshlbPackage(file: string): boolean {
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === NAME;
  } catch {
    return false; // a package.json we cannot read is not ours
  }
}
