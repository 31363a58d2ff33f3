// Defaults and flags the docs' recipes rely on: serve's default data dir names
// the mesh (two topologies on one machine never share a replica's log), and
// submit takes --wait as well as --no-wait (waiting is the default).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultDataDir } from '../../src/cli/serve.js';
import { buildProgram } from '../../src/cli/main.js';
import { loadTopology } from '../../src/topology/parse.js';

const topologies = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'deploy', 'topologies');

describe('CLI defaults', () => {
  it("serve's default data dir is per mesh, cell and replica", () => {
    const example = loadTopology(join(topologies, 'example.yaml'));
    const ha = loadTopology(join(topologies, 'ha.yaml'));
    expect(defaultDataDir(example, '/', 1)).toBe(join('.data', 'example-8ac119a12fc792ec', 'root-1'));
    expect(defaultDataDir(ha, '/eu/west-1a', 2)).toBe(join('.data', `ha-${ha.id}`, 'eu-west-1a-2'));
    // the trap this closes: both files' root replica 1 used .data/root-1
    expect(defaultDataDir(ha, '/', 1)).not.toBe(defaultDataDir(example, '/', 1));
  });

  it('submit: --wait (the default) and --no-wait both parse', () => {
    const seen: Array<boolean | undefined> = [];
    for (const flags of [['--wait'], ['--no-wait'], []]) {
      const program = buildProgram(() => undefined).exitOverride();
      const submit = program.commands.find((c) => c.name() === 'submit')!;
      // parse only: replace the action so nothing connects
      submit.action((o: { wait?: boolean }) => void seen.push(o.wait));
      program.parse(['submit', '--address', '127.0.0.1:1', ...flags], { from: 'user' });
    }
    expect(seen).toEqual([true, false, undefined]);
  });
});
