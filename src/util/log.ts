// One logger factory for the whole product. Components take a child logger
// with their own bindings (cell, replica, component) so every line says where
// it came from. Level: MESHLB_LOG_LEVEL, else 'silent' under tests and 'info'.
// A burst of one info or warn message is cut to its first lines a second and a
// count of the rest (log-bursts.ts): a storm of refusals must not become a
// storm of log lines.
import { pino, type Logger } from 'pino';
import { LogBursts } from './log-bursts.js';

export type { Logger };

function defaultLevel(): string {
  if (process.env.MESHLB_LOG_LEVEL) return process.env.MESHLB_LOG_LEVEL;
  if (process.env.VITEST) return 'silent';
  return 'info';
}

let root: Logger | undefined;
/** Set while the bursts' report line is written, so that line is never held back itself. */
let reporting = false;
const bursts = new LogBursts((level, msg, count, windowMs) => {
  reporting = true;
  try {
    root?.[level >= 40 ? 'warn' : 'info']({ suppressed: count, windowMs }, `${count} more "${msg}" lines not written`);
  } finally {
    reporting = false;
  }
});

/** The message text of a pino call: `log.warn(obj, msg)` or `log.warn(msg)`. */
function messageOf(args: unknown[]): string {
  const m = typeof args[0] === 'string' ? args[0] : args[1];
  return typeof m === 'string' ? m : '';
}

/** The process-wide root logger (JSON lines on stderr, so stdout stays for --json output). */
export function rootLogger(): Logger {
  root ??= pino(
    {
      level: defaultLevel(),
      base: { pid: process.pid },
      hooks: {
        logMethod(args, method, level) {
          if (reporting || bursts.admit(level, messageOf(args))) method.apply(this, args);
        },
      },
    },
    pino.destination(2),
  );
  return root;
}

/** Replace the root logger (the CLI does this for --log-level, tests for capture). */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

export function logger(bindings: Record<string, unknown>): Logger {
  return rootLogger().child(bindings);
}
