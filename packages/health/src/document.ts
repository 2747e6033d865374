import { AccountDbError } from '@accountdb/pool';
import { describeCause } from '@accountdb/pool/internal';

/** The three health+json statuses. `warn` is healthy with a concern: HTTP 200, like `pass`. */
export type HealthStatus = 'pass' | 'warn' | 'fail';

/**
 * One entry of a health+json `checks` list (draft-inadarei-api-health-check, section 4). `output`
 * is present when the status is not `pass` (naming the threshold crossed) or when the value is partial.
 */
export interface HealthCheckResult {
  componentType: 'datastore' | 'component' | 'system';
  status: HealthStatus;
  /** A number, a string such as `primary`, or a boolean; `null` when this login role cannot see it (see `output`). */
  observedValue: number | string | boolean | null;
  observedUnit?: string;
  /** ISO 8601 time the value was observed. */
  time: string;
  output?: string;
}

/** An `application/health+json` document; `checks` are keyed `component:measurement`. */
export interface HealthDocument {
  status: HealthStatus;
  /** Set when the status is not `pass`: the failing or warning checks, in short. */
  output?: string;
  checks: Record<string, HealthCheckResult[]>;
}

/** The media type of a {@link HealthDocument}. */
export const HEALTH_JSON = 'application/health+json';

const RANK: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };

export function worst(statuses: Iterable<HealthStatus>): HealthStatus {
  let result: HealthStatus = 'pass';
  for (const s of statuses) if (RANK[s] > RANK[result]) result = s;
  return result;
}

/** A document from its checks: status is the worst check's, output lists what is not `pass`. */
export function toDocument(checks: Record<string, HealthCheckResult[]>): HealthDocument {
  const entries = Object.entries(checks).flatMap(([key, list]) => list.map((c) => [key, c] as const));
  const status = worst(entries.map(([, c]) => c.status));
  if (status === 'pass') return { status, checks };
  const output = entries
    .filter(([, c]) => c.status !== 'pass')
    .map(([key, c]) => `${key} ${c.status}${c.output ? `: ${c.output}` : ''}`)
    .join('; ');
  return { status, output, checks };
}

/** Merge documents (their `checks` keys are disjoint by construction). */
export function mergeDocuments(docs: readonly HealthDocument[]): HealthDocument {
  return toDocument(Object.assign({}, ...docs.map((d) => d.checks)));
}

/** A warn/fail pair; either may be undefined (that level is off). Values at or above a level trip it. */
export interface Threshold {
  readonly warn: number | undefined;
  readonly fail: number | undefined;
}

/**
 * Judge `value` against a threshold pair and build the check. `name` is the option that set the
 * threshold, so the output says which knob to turn, e.g. `12 s >= warn threshold 10 s (longTransactionSeconds.warn)`.
 */
export function judged(
  componentType: HealthCheckResult['componentType'],
  value: number | null,
  unit: string,
  threshold: Threshold,
  name: string,
  time: string,
  note?: string,
): HealthCheckResult {
  let status: HealthStatus = 'pass';
  let output: string | undefined;
  if (value !== null) {
    for (const level of ['fail', 'warn'] as const) {
      const limit = threshold[level];
      if (limit !== undefined && value >= limit) {
        status = level;
        output = `${format(value)} ${unit} >= ${level} threshold ${format(limit)} ${unit} (${name}.${level})`;
        break;
      }
    }
  }
  const text = [output, note].filter(Boolean).join('; ');
  return {
    componentType,
    status,
    observedValue: value === null ? null : round(value),
    observedUnit: unit,
    time,
    ...(text ? { output: text } : {}),
  };
}

/** A failed check: the error described without secrets (pool errors never carry passwords; others are masked). */
export function failed(
  componentType: HealthCheckResult['componentType'],
  unit: string,
  time: string,
  output: string,
  observedValue: number | null = null,
): HealthCheckResult {
  return { componentType, status: 'fail', observedValue, observedUnit: unit, time, output };
}

/** An error as one line, safe for a health document: code and message, connection strings masked. */
export function describeError(err: unknown): string {
  const text = AccountDbError.is(err) ? `${err.code}: ${err.message}` : describeCause(err);
  return maskSecrets(text);
}

/** Remove anything shaped like a connection string or a `password=` pair. */
export function maskSecrets(text: string): string {
  return text
    .replace(/postgres(?:ql)?:\/\/[^\s'"]*/gi, 'postgres://***')
    .replace(/(password\s*[=:]\s*)('[^']*'|"[^"]*"|\S+)/gi, '$1***');
}

export const round = (n: number): number => Math.round(n * 100) / 100;

function format(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : String(round(n));
}
