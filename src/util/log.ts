// One logger factory for the whole product. Components take a child logger
// with their own bindings (cell, replica, component) so every line says where
// it came from. Level: MESHLB_LOG_LEVEL, else 'silent' under tests and 'info'.
import { pino, type Logger } from 'pino';

export type { Logger };

function defaultLevel(): string {
  if (process.env.MESHLB_LOG_LEVEL) return process.env.MESHLB_LOG_LEVEL;
  if (process.env.VITEST) return 'silent';
  return 'info';
}

let root: Logger | undefined;

/** The process-wide root logger (JSON lines on stderr, so stdout stays for --json output). */
export function rootLogger(): Logger {
  root ??= pino({ level: defaultLevel(), base: { pid: process.pid } }, pino.destination(2));
  return root;
}

/** Replace the root logger (the CLI does this for --log-level, tests for capture). */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

export function logger(bindings: Record<string, unknown>): Logger {
  return rootLogger().child(bindings);
}
