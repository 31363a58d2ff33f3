// How a command's failure reads: one line, `meshlb: <what went wrong>`, never
// a stack trace (unless MESHLB_LOG_LEVEL is debug or trace). The usual
// failures get a line that says what to do: a port already taken, a path that
// cannot be written.

/** The one line main() prints for a failure (without the `meshlb: ` prefix). */
export function errorLine(err: unknown): string {
  const e = err as Partial<NodeJS.ErrnoException> & { address?: string; port?: number };
  const message = err instanceof Error ? err.message : String(err);
  // gRPC servers: "cannot listen on H:P: ... EADDRINUSE ..."; http servers: an errno error with address and port.
  if (e.code === 'EADDRINUSE' || /\bEADDRINUSE\b/.test(message)) {
    const where =
      /cannot listen on (\S+?):? /.exec(message)?.[1] ??
      (e.address !== undefined && e.port !== undefined ? `${e.address}:${e.port}` : undefined);
    return `cannot listen on ${where ?? 'its port'}: the port is in use (another replica, a meshlb dev or another program holds it)`;
  }
  // File system errors name the call and the path already: "ENOTDIR: not a directory, mkdir '/x/y'".
  return message.split('\n')[0]!.trim() || String(err);
}

/** Whether to print the stack too: only when debugging. */
export function wantsStack(): boolean {
  return /^(debug|trace)$/.test(process.env.MESHLB_LOG_LEVEL ?? '');
}

/** Print a command's failure (main's last resort) and return its exit code, 1. */
export async function reportFailure(err: unknown): Promise<number> {
  const { TopologyError } = await import('../topology/parse.js');
  const { CliFailure } = await import('./load.js');
  // A topology's problems are listed one per line; a CliFailure is already the line to print.
  if (err instanceof TopologyError || err instanceof CliFailure) process.stderr.write(`meshlb: ${err.message}\n`);
  else process.stderr.write(`meshlb: ${errorLine(err)}\n`);
  if (wantsStack() && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
