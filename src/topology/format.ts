// How a topology problem is written: one line per problem, naming the line in
// the file, the cell path and the field ("line 12: cell "/eu" field "policy":
// unknown policy ..."), so an operator fixes a file in one pass. The file name
// itself is added by TopologyError (./parse.ts).
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node as YamlNode } from 'yaml';
import { SEGMENT_RE, joinPath } from './paths.js';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as a message shows it: its kind, and the value itself when it is a scalar. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Collects every problem of one file. `where` is `field "x.y"`, `cell "/p"` or
 * `cell "/p" field "x"`; the line is looked up from the cell or top-level key.
 */
export class Collector {
  readonly issues: string[] = [];
  /** Line of each cell's mapping and each top-level key, to point at the problem. */
  constructor(private readonly lines: ReadonlyMap<string, number> = new Map()) {}
  add(where: string, msg: string): void {
    const line = this.lineOf(where);
    this.issues.push(`${line ? `line ${line}: ` : ''}${where ? `${where}: ` : ''}${msg}`);
  }
  private lineOf(where: string): number | undefined {
    const cell = /^cell "([^"]+)"/.exec(where);
    if (cell) return this.lines.get(cell[1]!);
    const field = /^field "([a-zA-Z]+)/.exec(where);
    if (field) return this.lines.get(field[1]!);
    return undefined;
  }
  keys(where: string, o: Obj, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.add(where, `unknown key "${k}" (allowed: ${allowed.join(', ')})`);
    }
  }
}

/** The first YAML syntax error as one problem line (yaml's own position suffix dropped: the line leads). */
export function yamlSyntaxIssue(doc: Document): string | undefined {
  const e = doc.errors[0];
  if (!e) return undefined;
  const line = e.linePos?.[0]?.line;
  return `${line ? `line ${line}: ` : ''}not valid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
}

/** Lines of the top-level keys and of every cell (by path), for error messages. */
export function nodeLines(root: unknown, lc: LineCounter): Map<string, number> {
  const out = new Map<string, number>();
  const lineOf = (n: unknown) => {
    const r = (n as YamlNode | null)?.range;
    return r ? lc.linePos(r[0]).line : undefined;
  };
  if (!isMap(root)) return out;
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    const line = lineOf(pair.key);
    if (key && line) out.set(key, line);
  }
  const walk = (node: unknown, path: string) => {
    if (!isMap(node)) return;
    const line = lineOf(node);
    if (line && !out.has(path)) out.set(path, line);
    const children = node.get('children', true);
    if (!isSeq(children)) return;
    for (const ch of children.items) {
      if (!isMap(ch)) continue;
      const name = ch.get('name');
      if (typeof name === 'string' && SEGMENT_RE.test(name)) walk(ch, joinPath(path, name));
    }
  };
  let cells: unknown = root.get('cells', true);
  if (isSeq(cells)) cells = cells.items[0];
  walk(cells, '/');
  return out;
}
