// docs/operations.md as the operations recipe tests read it: each ```sh block's
// commands under the heading they sit in, how every command is run (by which test
// file) or why it is not, and the moved copies of the example and ha topologies
// the commands run against (their fixed ports 7100-7114 and 7200-7229 moved to
// free ranges, their data under a temporary directory).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandsOf, freeRange, inlineCommands, movedTopology, repo, shrink } from './recipes.js';

export const OPS = readFileSync(join(repo, 'docs/operations.md'), 'utf8');
export const EXAMPLE = 'deploy/topologies/example.yaml';
export const HA = 'deploy/topologies/ha.yaml';

/** Every ```sh block's commands, with the nearest heading above the block. */
export function opsBlocks(): Array<{ heading: string; commands: string[] }> {
  const out: Array<{ heading: string; commands: string[] }> = [];
  let heading = '';
  for (const part of OPS.split(/(^```sh\n[\s\S]*?^```)/m)) {
    if (part.startsWith('```sh\n')) out.push({ heading, commands: commandsOf(part.slice(6, -3)) });
    else heading = [...part.matchAll(/^#{2,3} (.+)$/gm)].at(-1)?.[1] ?? heading;
  }
  return out;
}

/** The commands of the blocks under `heading`, in order. */
export function commandsUnder(heading: string): string[] {
  const cmds = opsBlocks()
    .filter((b) => b.heading === heading)
    .flatMap((b) => b.commands);
  if (cmds.length === 0) throw new Error(`docs/operations.md has no sh block under "${heading}"`);
  return cmds;
}

/** Which test file runs a command, or why no test does. */
export const PLANS: Array<{ match: RegExp; by: 'mesh' | 'sims'; skip?: string }> = [
  // The lines no test runs first: the first plan that matches a command is its plan.
  { match: /^npx meshlb serve \.\.\. /, by: 'mesh', skip: 'a template: `...` stands for the rest of a serve command' },
  {
    match: /^npx meshlb sim --topology deploy\/topologies\/ha\.yaml --chaos |^npm run chaos -- --duration \d+$/,
    by: 'sims',
    skip: 'chaos on ha.yaml (29 processes) takes minutes per run on 2 cores, past the suite budget; operations-sims runs ha.yaml as processes without chaos and example.yaml with chaos in namespaces, and test/cli/sim.test.ts runs sim with kills, partitions and restarts',
  },
  {
    match: /^sudo npm run chaos -- .*--netns$/,
    by: 'sims',
    skip: 'npm run chaos inside network namespaces: the `sudo npx meshlb sim ... --netns` line runs the same lab here; this one takes minutes',
  },
  {
    match: /^(docker|kubectl) /,
    by: 'sims',
    skip: 'no Docker engine or Kubernetes cluster here; test/cli/deploy.test.ts checks what they would run',
  },
  {
    match: /^sudo (MESHLB_TEST_SEED=\d+ )?npx vitest run test\/e2e\/\S+-netns\.test\.ts/,
    by: 'sims',
    skip: 'these files run in `npm test` itself (the alone project); a suite inside the suite would run them twice',
  },
  { match: /^(grpcurl |[AL]=|npx meshlb (health|status) |for [ar] in )/, by: 'mesh' },
  { match: /^(MESHLB_OTLP_ENDPOINT=\S+ )?npx meshlb (serve|dev) .*--otlp-endpoint|^MESHLB_OTLP_ENDPOINT=/, by: 'mesh' },
  {
    match:
      /^(sudo )?npx meshlb sim |^(sudo )?npm run chaos |^npx meshlb (deploy|topology show) |^npx meshlb dev --metrics-port/,
    by: 'sims',
  },
];

/** Every command operations.md gives: its sh blocks' and the `npx meshlb ...` it names inline. */
export function allCommands(): string[] {
  return [...opsBlocks().flatMap((b) => b.commands), ...inlineCommands(OPS)];
}

export const planOf = (cmd: string): (typeof PLANS)[number] | undefined => PLANS.find((p) => p.match.test(cmd));

/** As root with no sudo installed, a `sudo ` prefix is dropped, as the doc says to ("As root, drop `sudo`"). */
export function asRoot(cmd: string, hasSudo: boolean): string {
  return !hasSudo && process.getuid?.() === 0 ? cmd.replace(/^sudo /, '') : cmd;
}

/** The moved copies, and the rewriting of a command onto them. */
export interface Moved {
  example: string;
  ha: string;
  exBase: number;
  haBase: number;
  otlpPort: number;
  /** A command with the topologies' files, their 71xx/72xx addresses and port 4318 moved. */
  cmd(c: string): string;
  /** A replica's moved address for one the doc gives. */
  addr(a: string): string;
}

export async function moveTopologies(dir: string, extraDefaults = ''): Promise<Moved> {
  mkdirSync(dir, { recursive: true });
  const exBase = await freeRange(15);
  const haBase = await freeRange(31); // ha.yaml takes 7200-7228; docs/topology.md adds replicas at 7229 and 7230
  const otlpPort = await freeRange(1);
  const example = movedTopology(EXAMPLE, join(dir, 'example.yaml'), exBase, join(dir, 'data'), extraDefaults);
  const ha = movedTopology(HA, join(dir, 'ha.yaml'), haBase, join(dir, 'data'), extraDefaults);
  const addr = (a: string): string =>
    a
      .replace(/127\.0\.0\.1:71(\d\d)\b/g, (_, n: string) => `127.0.0.1:${exBase + Number(n)}`)
      .replace(/127\.0\.0\.1:72(\d\d)\b/g, (_, n: string) => `127.0.0.1:${haBase + Number(n)}`)
      .replace(/127\.0\.0\.1:4318\b/g, `127.0.0.1:${otlpPort}`);
  return {
    example,
    ha,
    exBase,
    haBase,
    otlpPort,
    addr,
    cmd: (c) => addr(c.replaceAll(EXAMPLE, example).replaceAll(HA, ha)),
  };
}

/**
 * docs/topology.md's step 1 for adding replicas to ha.yaml's root (its ha5.yaml), on the
 * moved copy: the root lists its replicas (the three it had, a fourth at 7229 and a fifth
 * at 7230: a group has 1, 3 or 5), and basePort rises by three so every other cell keeps
 * its port.
 */
export function withFiveRootReplicas(m: Moved, out: string): string {
  const yaml = readFileSync(m.ha, 'utf8');
  const listed = [0, 1, 2, 29, 30].map((n) => `    - { address: "127.0.0.1:${m.haBase + n}" }`).join('\n');
  let text = shrink(yaml, /basePort: \d+/, `basePort: ${m.haBase + 3}`);
  text = shrink(text, /^cells:\n {2}name: \/\n/m, `cells:\n  name: /\n  replicas:\n${listed}\n`);
  writeFileSync(out, text);
  return out;
}
