// The security part of the command line (docs/security.md), kept apart from
// main.ts's command table: `meshlb certs`, and the flags callers share
// (agent-sim, submit, health) to reach a secured mesh: TLS (--tls for the
// system roots, --ca for the mesh CA, --cert/--key for a client certificate)
// and a bearer token (--token-file, or the MESHLB_TOKEN environment variable;
// never a flag value, which `ps` shows); submit's --tenant.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { int, list } from './flags.js';
import type { CallerSecurity } from '../security/caller.js';
import { CliFailure } from './load.js';
import type { Opts } from './flags.js';

/** Add `certs`, and the caller flags to agent-sim, submit and health (their actions read callerSecurityFrom). */
export function addSecurityCommands(program: Command, run: (code: Promise<number>) => void): void {
  for (const name of ['agent-sim', 'submit', 'health', 'status']) {
    const cmd = program.commands.find((c) => c.name() === name);
    if (cmd) addCallerSecurityOptions(cmd);
  }
  program.commands
    .find((c) => c.name() === 'submit')
    ?.option('--tenant <name>', "the tasks' tenant (default: none, or a token's only tenant)");
  program
    .command('certs')
    .description('make a development CA and a certificate per replica with openssl (docs/security.md)')
    .requiredOption('--topology <file>', 'topology YAML')
    .requiredOption('--out <dir>', 'output directory (reuses DIR/ca.pem and ca.key if present)')
    .option('--days <n>', 'validity of the replica certificates', int(1, 3650), 365)
    .option('--san <names>', 'extra DNS names or IPs for every replica certificate', list())
    .option('--new-ca', 'make a new CA even if DIR has one')
    .action((o: Opts) => {
      run(
        (async () => {
          const { runCerts } = await import('./certs.js');
          return runCerts({
            topologyFile: o.topology as string,
            outDir: o.out as string,
            days: o.days as number,
            extraSans: (o.san as string[] | undefined) ?? [],
            newCa: o.newCa === true,
          });
        })(),
      );
    });
}

export function addCallerSecurityOptions(cmd: Command): Command {
  return cmd
    .option('--tls', "TLS with the system's root certificates (implied by --ca)")
    .option('--ca <file>', "TLS: the CA the replicas' certificates chain to (meshlb certs: DIR/ca.pem)")
    .option('--cert <file>', 'TLS client certificate (with --key)')
    .option('--key <file>', 'TLS client key (with --cert)')
    .option('--token-file <file>', 'bearer token to send (default: $MESHLB_TOKEN); needs TLS');
}

/** The CallerSecurity the flags describe (empty: plaintext, no token). */
export function callerSecurityFrom(o: Opts): CallerSecurity {
  const str = (k: string): string | undefined => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const ca = str('ca');
  const cert = str('cert');
  const key = str('key');
  if ((cert === undefined) !== (key === undefined)) throw new CliFailure('--cert and --key go together');
  let token: string | undefined;
  const file = str('tokenFile');
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new CliFailure(`cannot read --token-file ${file}: ${(err as Error).message}`);
    }
  } else if (process.env.MESHLB_TOKEN) token = process.env.MESHLB_TOKEN.trim();
  const tls = ca !== undefined || cert !== undefined || o.tls === true;
  if (token !== undefined && !tls) {
    const from = file !== undefined ? '--token-file' : 'MESHLB_TOKEN';
    throw new CliFailure(`a token (${from}) is sent only over TLS: add --ca FILE (or --tls for the system roots)`);
  }
  const out: CallerSecurity = {};
  if (tls) {
    out.tls =
      ca === undefined && cert === undefined
        ? true
        : {
            ...(ca !== undefined ? { caFile: ca } : {}),
            ...(cert !== undefined ? { certFile: cert } : {}),
            ...(key !== undefined ? { keyFile: key } : {}),
          };
  }
  if (token !== undefined) out.token = token;
  return out;
}
