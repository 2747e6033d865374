/** A log method in pino's shape: `log(obj, msg)` or `log(msg)`. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** The pino-shaped logger every AccountDB factory accepts. Default: silent. */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = () => {};

/** A logger that drops everything. */
export const silentLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};

/** The child logger a package uses: `{ pkg: name }` on top of the caller's logger, or silence. */
export function packageLogger(logger: Logger | undefined, pkg: string): Logger {
  return logger ? logger.child({ pkg }) : silentLogger;
}
