#!/usr/bin/env node
// The `meshlb` command. In a checkout it runs the TypeScript sources through
// tsx (a dependency), so a fresh clone works after `npm ci` with no build step
// and a stale dist/ can never shadow the code you are editing. Where the
// sources are absent (a built package), it runs the compiled dist/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'cli', 'main.ts');
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(source).href);
} else {
  await import(pathToFileURL(join(root, 'dist', 'src', 'cli', 'main.js')).href);
}
