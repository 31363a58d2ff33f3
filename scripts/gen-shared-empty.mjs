// Run by `npm run gen:proto` after `buf generate`: ts-proto (env=node) gives
// every bytes field of a new message its own `Buffer.alloc(0)`, so decoding a
// TaskSpec or a TaskResult made a Buffer it threw away at once (the field is
// then read from the wire, or stays empty). At full rate that was 3-4% of a
// relaying cell's time (docs/performance.md, "Full rate: session 13"). One shared
// empty Buffer per generated file serves instead: a zero-length Buffer holds
// nothing to change, and the generated code only ever replaces the field.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GEN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'gen');
const NAME = 'EMPTY_BYTES';
const DECL = `\n/** The empty default of every bytes field here (scripts/gen-shared-empty.mjs): never written to. */\nconst ${NAME}: Buffer = Buffer.alloc(0);\n`;

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

let changed = 0;
for (const file of files(GEN)) {
  const src = readFileSync(file, 'utf8');
  if (!src.includes('Buffer.alloc(0)')) continue;
  let out = src.replaceAll('Buffer.alloc(0)', NAME);
  // After the import block: the first blank line after the last top-level import.
  const lastImport = out.lastIndexOf('\nimport ');
  const at = out.indexOf('\n\n', out.indexOf(';', lastImport));
  out = out.slice(0, at + 1) + DECL + out.slice(at + 1);
  writeFileSync(file, out);
  changed++;
}
process.stderr.write(`gen-shared-empty: ${changed} file(s)\n`);
