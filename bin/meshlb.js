#!/usr/bin/env node
// The `meshlb` command. In a checkout it runs the TypeScript sources through
// tsx (a dev dependency, which `npm ci` installs), so a fresh clone works with
// no build step and a stale dist/ can never shadow the code you are editing.
// Where the sources are absent (the image, deploy/Dockerfile; an npm package)
// it runs the compiled dist/, with no TypeScript tooling at run time. A
// checkout installed without dev dependencies (`npm ci --omit=dev`) has no tsx:
// it runs dist/ if one was built, else says how to get one.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'cli', 'main.ts');
const compiled = join(root, 'dist', 'src', 'cli', 'main.js');

/** tsx's loader API, or undefined where tsx is not installed. */
async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch (err) {
    if (err && (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND')) return undefined;
    throw err;
  }
}

const loader = existsSync(source) ? await tsx() : undefined;
if (loader) {
  loader.register();
  await import(pathToFileURL(source).href);
} else if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  process.stderr.write(
    existsSync(source)
      ? `meshlb: tsx is not installed (npm ci --omit=dev?) and there is no dist/: run \`npm ci\` in ${root}\n`
      : `meshlb: ${compiled} is missing: this package was not built (npm run build)\n`,
  );
  process.exitCode = 1;
}
