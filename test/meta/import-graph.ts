// The import graph of src/: who imports whom, circles in it, and imports that
// cross a layer the wrong way. Pure functions over a graph, so the checks can
// be shown to fire on a synthetic graph (test/meta/imports.test.ts) before
// they are trusted on the real one.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Module (path relative to the repository root, e.g. `src/mesh/cell.ts`) → modules it imports. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

const SPECIFIER =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every import specifier of `code` (static, side-effect, re-export, dynamic), comments ignored. */
export function importSpecifiers(code: string): string[] {
  const stripped = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [...stripped.matchAll(SPECIFIER)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

/** Relative specifiers of one source file (package imports are not part of the graph). */
export function relativeSpecifiers(code: string): string[] {
  return importSpecifiers(code).filter((s) => s.startsWith('.'));
}

export function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The graph of every .ts file under `root/dir`; `.js` specifiers resolve to the `.ts` source. */
export function buildGraph(root: string, dir = 'src'): ImportGraph {
  const graph = new Map<string, string[]>();
  for (const file of tsFiles(join(root, dir))) {
    const from = relative(root, file);
    const deps = relativeSpecifiers(readFileSync(file, 'utf8')).map((s) =>
      relative(root, resolve(dirname(file), s.replace(/\.js$/, '.ts'))),
    );
    graph.set(from, deps);
  }
  return graph;
}

/** Every strongly connected component with more than one module (or a self-import): each is an import circle. */
export function findCycles(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
        if (w === v) break;
      }
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** `from` (a folder prefix) may import only modules under one of `allow` (folder prefixes). */
export interface LayerRule {
  readonly from: string;
  readonly allow: readonly string[];
  readonly why: string;
}

/** Imports that break a rule, as `importer -> imported (why)`. */
export function layerViolations(graph: ImportGraph, rules: readonly LayerRule[]): string[] {
  const out: string[] = [];
  for (const [from, deps] of graph) {
    for (const rule of rules) {
      if (!from.startsWith(rule.from)) continue;
      for (const d of deps) if (!rule.allow.some((a) => d.startsWith(a))) out.push(`${from} -> ${d} (${rule.why})`);
    }
  }
  return out.sort();
}
