// The build's second step (`npm run build`, and scripts/prepare.mjs on install):
// copy the files under src/ that are not TypeScript (the live page's html, js
// and css, src/admin/page/) to the same place under dist/, since tsc writes
// only what it compiles and the compiled modules read them next to themselves.
//
//   node scripts/copy-assets.mjs [outDir]    # outDir: dist unless given (relative to the package root)
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Every file under `dir` that tsc does not compile: not .ts (.d.ts included). */
function assets(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...assets(p));
    else if (e.isFile() && !e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

export function copyAssets(outDir = join(root, 'dist')) {
  const copied = [];
  for (const file of assets(join(root, 'src'))) {
    const to = join(outDir, relative(root, file));
    mkdirSync(dirname(to), { recursive: true });
    cpSync(file, to);
    copied.push(relative(root, to));
  }
  return copied;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = resolve(root, process.argv[2] ?? 'dist');
  const copied = copyAssets(outDir);
  const shown = relative(root, outDir);
  process.stderr.write(
    `meshlb build: copied ${copied.length} assets to ${shown.startsWith('..') ? outDir : shown}/src\n`,
  );
}
