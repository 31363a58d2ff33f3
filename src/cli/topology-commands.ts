// `meshlb topology validate|show FILE`: check and inspect topology files.
// Apart from main.ts (the command table) to keep that file in a head.
import type { Command } from 'commander';
import type { Opts } from './flags.js';

export function addTopologyCommands(program: Command, run: (code: Promise<number>) => void): void {
  const topology = program.command('topology').description('check and inspect topology files');
  topology
    .command('validate')
    .description('validate a topology file: exit 0, or list every problem and exit 1')
    .argument('<file>')
    .action((file: string) => {
      run(
        (async () => {
          const { loadTopology } = await import('../topology/parse.js');
          const t = loadTopology(file);
          const replicas = t.cells.reduce((n, c) => n + c.replicas.length, 0);
          process.stdout.write(`${file}: ok (${t.name}: ${t.cells.length} cells, ${replicas} replicas)\n`);
          return 0;
        })(),
      );
    });
  topology
    .command('show')
    .description('print the cell tree with tiers, policies and addresses')
    .argument('<file>')
    .option('--yaml', 'print the explicit topology (every address spelled out) as YAML')
    .action((file: string, o: Opts) => {
      run(
        (async () => {
          const { loadTopology, formatTopology, topologyToDocument } = await import('../topology/parse.js');
          const t = loadTopology(file);
          if (o.yaml) {
            const { stringify } = await import('yaml');
            process.stdout.write(stringify(topologyToDocument(t)));
          } else process.stdout.write(`${formatTopology(t)}\n`);
          return 0;
        })(),
      );
    });
}
