import type { Logger } from '../src/index.js';

/** One call the pool made on a {@link recordingLogger}, with the bindings of the child it came through. */
export interface LogLine {
  level: string;
  bindings: Record<string, unknown>;
  obj: unknown;
  msg: unknown;
}

/** A logger that keeps every call, children included, to check what the pool says (and never says). */
export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const at =
      (level: string) =>
      (obj: unknown, msg?: unknown): void => {
        lines.push({ level, bindings, obj, msg });
      };
    return {
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return { logger: make({}), lines };
}
