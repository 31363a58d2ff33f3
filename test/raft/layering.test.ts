// The Raft library stands alone: every module under src/raft imports only
// src/raft, its generated protos (src/gen) and the few packages it does IO
// with. (eslint's no-restricted-imports says the same while editing; this
// check also covers packages, e.g. a logger library.) The checker is shown to
// fire on synthetic imports first, so a green run means something.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importSpecifiers, tsFiles } from '../meta/import-graph.js';

const root = join(import.meta.dirname, '..', '..');
const ALLOWED_DIRS = ['src/raft/', 'src/gen/'];
/** IO the runtime and storage do themselves: gRPC and lmdb (plus Node's built-ins). */
const ALLOWED_PACKAGES = ['@grpc/grpc-js', 'lmdb'];

/** The imports of `file` (a path relative to the repository root) that leave the library, with the reason. */
function outsideImports(file: string, code: string): string[] {
  const out: string[] = [];
  for (const spec of importSpecifiers(code)) {
    if (spec.startsWith('.')) {
      const target = relative(root, resolve(root, dirname(file), spec))
        .split('\\')
        .join('/');
      if (!ALLOWED_DIRS.some((d) => target.startsWith(d))) out.push(`${file} -> ${target}`);
    } else if (!spec.startsWith('node:') && !ALLOWED_PACKAGES.includes(spec)) {
      out.push(`${file} -> package ${spec}`);
    }
  }
  return out;
}

describe('raft layering checker', () => {
  it('reads every kind of import, and not comments', () => {
    const code = [
      "import { a } from './a.js';",
      'import {',
      '  type B,',
      "} from '../core/b.js';",
      "import './side-effect.js';",
      "export * from './c.js';",
      "const d = await import('./d.js');",
      "// import { e } from '../../util/e.js';",
      "/* import { f } from 'pino'; */",
    ].join('\n');
    expect(importSpecifiers(code)).toEqual(['./a.js', '../core/b.js', './side-effect.js', './c.js', './d.js']);
  });

  it('flags an import of the product and of an unlisted package, and passes the library, protos and IO', () => {
    const file = 'src/raft/runtime/x.ts';
    const code = [
      "import { logger } from '../../util/log.js';",
      "import { pino } from 'pino';",
      "import type { Message } from '../core/types.js';",
      "import { RaftServiceClient } from '../../gen/meshlb/v1/raft.js';",
      "import * as grpc from '@grpc/grpc-js';",
      "import fs from 'node:fs';",
      "const m = await import('../../mesh/cell.js');",
    ].join('\n');
    expect(outsideImports(file, code)).toEqual([
      'src/raft/runtime/x.ts -> src/util/log.js',
      'src/raft/runtime/x.ts -> package pino',
      'src/raft/runtime/x.ts -> src/mesh/cell.js',
    ]);
  });
});

describe('src/raft', () => {
  const files = tsFiles(join(root, 'src', 'raft'));

  it('is scanned whole', () => {
    expect(files.length).toBeGreaterThan(25);
  });

  it('imports nothing outside src/raft and src/gen but gRPC, lmdb and Node', () => {
    const bad = files.flatMap((f) => outsideImports(relative(root, f), readFileSync(f, 'utf8')));
    expect(bad).toEqual([]);
  });
});
