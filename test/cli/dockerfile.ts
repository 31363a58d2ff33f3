// A reader of deploy/Dockerfile for the deploy tests: there is no container
// engine here, so the tests check the image's instructions and run its start
// and health commands outside a container. Covers what that Dockerfile uses:
// comments, `\` continuations, exec (JSON) and shell forms, ENV key=value,
// stages (`FROM image AS name`) and COPY's `--from=<stage>`.
import { readFileSync } from 'node:fs';

export interface Instruction {
  keyword: string;
  args: string;
}

/** One COPY: its sources (in the build context, or in stage `from`'s filesystem) and its destination. */
export interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
}

/** The instructions of one stage, from its FROM (included) to the next FROM. */
export interface Stage {
  /** The `AS` name, if any. */
  name: string | undefined;
  /** The base image. */
  base: string;
  instructions: Instruction[];
  /** The last instruction with this keyword (the one in force), or undefined. */
  last(keyword: string): Instruction | undefined;
  all(keyword: string): Instruction[];
  copies: Copy[];
}

/** The file's stages; the fields outside `stages` are the final stage's: the image that gets run. */
export interface Dockerfile extends Stage {
  stages: Stage[];
  stage(name: string): Stage;
  /** Every ENV of the final stage, in order, later ones winning. */
  env: Record<string, string>;
  /** ENTRYPOINT and CMD in exec form. */
  entrypoint: string[];
  cmd: string[];
  healthcheck: { options: Record<string, string>; command: string } | undefined;
}

export function readDockerfile(path: string): Dockerfile {
  const stages = splitStages(parseInstructions(readFileSync(path, 'utf8')));
  const image = stages.at(-1);
  if (image === undefined) throw new Error(`${path}: no FROM`);
  const env: Record<string, string> = {};
  for (const i of image.all('ENV')) {
    for (const pair of i.args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return {
    ...image,
    stages,
    stage: (name) => {
      const st = stages.find((x) => x.name === name);
      if (st === undefined) throw new Error(`${path}: no stage ${name}`);
      return st;
    },
    env,
    entrypoint: execForm(image.last('ENTRYPOINT')?.args),
    cmd: execForm(image.last('CMD')?.args),
    healthcheck: parseHealthcheck(image.last('HEALTHCHECK')?.args),
  };
}

function splitStages(instructions: Instruction[]): Stage[] {
  const groups: Instruction[][] = [];
  for (const i of instructions) {
    if (i.keyword === 'FROM') groups.push([i]);
    else if (groups.length === 0) {
      if (i.keyword !== 'ARG') throw new Error(`${i.keyword} before the first FROM`);
    } else groups.at(-1)!.push(i);
  }
  return groups.map((instructions) => {
    const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instructions[0]!.args);
    if (!m) throw new Error(`unexpected FROM: ${instructions[0]!.args}`);
    const all = (k: string) => instructions.filter((i) => i.keyword === k);
    return {
      name: m[2],
      base: m[1]!,
      instructions,
      all,
      last: (k: string) => all(k).at(-1),
      copies: all('COPY').map((c) => parseCopy(c.args)),
    };
  });
}

/** `COPY [--from=stage] [--chown=...] src... dest` (the shell form, no spaces inside paths). */
function parseCopy(args: string): Copy {
  const words = args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  if (words.length < 2) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { from, sources: words.slice(0, -1), dest: words.at(-1)! };
}

function parseInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    // comment lines are dropped, also inside a continued instruction (as docker does)
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    const m = /^(\S+)\s+([\s\S]*)$/.exec(full);
    if (m) out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

function execForm(args: string | undefined): string[] {
  if (args === undefined) return [];
  if (!args.startsWith('[')) throw new Error(`expected the exec (JSON) form, got: ${args}`);
  const v: unknown = JSON.parse(args);
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`not a string array: ${args}`);
  return v;
}

/** `HEALTHCHECK --k=v ... CMD <shell command>` (the shell form: run with /bin/sh -c). */
function parseHealthcheck(args: string | undefined): Dockerfile['healthcheck'] {
  if (args === undefined) return undefined;
  const m = /^((?:--\S+=\S+\s+)*)CMD\s+([\s\S]+)$/.exec(args);
  if (!m) throw new Error(`unexpected HEALTHCHECK form: ${args}`);
  const options: Record<string, string> = {};
  for (const o of m[1]!.trim().split(/\s+/).filter(Boolean)) {
    const [k, v] = o.slice(2).split('=');
    options[k!] = v!;
  }
  return { options, command: m[2]!.trim() };
}

/** "5s", "1m30s", "500ms" → milliseconds (Docker's duration format, the units used here). */
export function durationMs(d: string): number {
  let ms = 0;
  for (const [, n, unit] of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return ms;
}
