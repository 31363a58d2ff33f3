// The flags' value parsers and the flags every command shares. A bad value
// is a usage error (commander's InvalidArgumentError: exit 2) that says what
// was wanted. Apart from main.ts so the command table there reads as a list
// of commands and their flags, not their parsing.
import { InvalidArgumentError, Option } from 'commander';

/** Parsed options of one command, as commander hands them to its action. */
export type Opts = Record<string, unknown>;

export function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError(`must be an integer between ${min} and ${max}`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`must be an integer between ${min} and ${max}`);
    return n;
  };
}
export function num(min: number, max = Number.POSITIVE_INFINITY) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a number between ${min} and ${max}`);
    }
    return n;
  };
}
export function list(allowed?: readonly string[]) {
  return (v: string): string[] => {
    const items = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (!items.length) throw new InvalidArgumentError('must be a comma-separated list');
    const bad = allowed ? items.filter((i) => !allowed.includes(i)) : [];
    if (bad.length) throw new InvalidArgumentError(`unknown ${bad.join(', ')} (allowed: ${allowed!.join(', ')})`);
    return items;
  };
}
export function labels(v: string): Array<{ key: string; value: string }> {
  return list()(v).map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`"${kv}" is not key=value`);
    return { key: kv.slice(0, i), value: kv.slice(i + 1) };
  });
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function applyLogLevel(o: Opts): void {
  if (typeof o.logLevel === 'string') process.env.MESHLB_LOG_LEVEL = o.logLevel;
}

export const logLevelOption = () =>
  new Option('--log-level <level>', 'log level (logs go to stderr)').choices(LOG_LEVELS);

/** Task traces (src/trace), for the commands that run cells: serve and dev. */
export const otlpEndpointOption = () =>
  new Option(
    '--otlp-endpoint <url>',
    'send task traces over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (default: no traces; env MESHLB_OTLP_ENDPOINT)',
  );

export const traceSampleOption = () =>
  new Option(
    '--trace-sample <ratio>',
    'fraction of new traces recorded, 0-1 (default 1; env MESHLB_TRACE_SAMPLE)',
  ).argParser(num(0, 1));
