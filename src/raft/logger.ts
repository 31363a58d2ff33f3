// The Raft library logs through this small port so it depends on no logging
// package and on nothing of the product. pino's Logger fits it structurally;
// the product hands in child loggers carrying its own bindings. A component
// given no logger is silent.

export interface RaftLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const ignore = (): void => undefined;

/** The default: drops every line. */
export const silentLogger: RaftLogger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
