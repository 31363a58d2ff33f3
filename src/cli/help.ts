// `--help` marks what is required and shows every default. commander shows
// `(default: x)` only for defaults it applies itself; many of ours are applied
// by the command (so an unset flag keeps its meaning, e.g. "the cell default"),
// and required options look like any other. This pass, run over the whole
// program once it is built, adds `(required)` to mandatory options and the
// default the command applies to every option that takes a value and names
// none. Flags with no default at all say `(default: none)`.

import type { Command } from 'commander';

// `--version` prints the package's own version (package.json), not a copy of it here.
export { packageVersion } from '../util/package-root.js';

/** Defaults the commands apply themselves, by `<command> <flag>` (or `* <flag>` for every command). */
const APPLIED: Record<string, string> = {
  'serve --listen': "the topology address's host",
  'serve --metrics-port': 'none (no /metrics)',
  'serve --http-port': 'none (no live page)',
  'dev --tasks': '10000',
  'dev --agents': '40',
  'dev --duration': 'none (until --tasks are submitted)',
  'dev --seed': '1',
  'dev --service-time-ms': '2',
  'dev --failure-rate': '0.02',
  'dev --metrics-port': 'none (no /metrics)',
  'dev --http-port': 'none (no live page)',
  'dev --log-level': 'warn',
  'agent-sim --labels': 'none',
  'agent-sim --service-time-ms': '0',
  'agent-sim --service-jitter-ms': '0',
  'agent-sim --expected-run-ms': 'the --service-time-ms (0: declare nothing)',
  'agent-sim --failure-rate': '0',
  'agent-sim --id-prefix': 'sim',
  'agent-sim --mesh': 'any',
  'agent-sim --seed': '1',
  'submit --concurrency': '256',
  'submit --timeout-ms': "the cell's task timeout (defaults.taskTimeoutMs, 30000)",
  'submit --duration': 'none (until --tasks are submitted)',
  'submit --wait-ms': '30000',
  'submit --durability': 'logged',
  'submit --batch': '1',
  'submit --seed': '1',
  'sim --log-level': "none (the processes' output is hidden; given, they log at this level and it is shown)",
  '* --log-level': '$MESHLB_LOG_LEVEL, else info',
};

export function annotateHelp(program: Command): void {
  const visit = (cmd: Command, path: string): void => {
    for (const opt of cmd.options) {
      if (opt.mandatory) {
        if (!opt.description.includes('(required)')) opt.description = `${opt.description} (required)`;
        continue;
      }
      const takesValue = opt.required || opt.optional;
      if (!takesValue || opt.defaultValue !== undefined || /\(default[:\s]/.test(opt.description)) continue;
      const applied = APPLIED[`${path} ${opt.long}`] ?? APPLIED[`* ${opt.long}`] ?? 'none';
      opt.description = `${opt.description} (default: ${applied})`;
    }
    for (const sub of cmd.commands) visit(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  visit(program, '');
}
