/**
 * `@accountdb/pool/prometheus`: a pool's `stats()` as prom-client metrics. prom-client is an optional
 * peer dependency of `@accountdb/pool`: only this subpath loads it, the pool itself never does.
 */
import { register as defaultRegistry, type Metric, type Registry, type RegistryContentType } from 'prom-client';
import { ConfigError, type ConfigProblem } from './errors.js';
import type { Pool } from './pool.js';
import type { DestroyReason, LatencyHistogram, PoolStats } from './stats.js';

/** Options of {@link createPoolCollector}. */
export interface PoolCollectorOptions {
  /** Registry to register with. Default: prom-client's global `register`. */
  readonly registry?: Registry<RegistryContentType>;
  /** Prefix of every metric name. Default `accountdb_pool_`. */
  readonly prefix?: string;
  /**
   * Labels on every sample of this pool (e.g. `{ pool: 'primary' }`), to tell several pools apart in one
   * registry. Every pool collected with one registry and prefix needs the same label names, and distinct values.
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** What {@link createPoolCollector} returns. */
export interface PoolCollector {
  /** Stop reporting this pool (the metrics leave the registry with the last pool collected in it). */
  remove(): void;
}

type Labels = Readonly<Record<string, string | number>>;
type Sample = { readonly value: number; readonly labels: Labels; readonly metricName?: string };
type MetricType = 'gauge' | 'counter' | 'histogram';

/** One metric family: how to read its samples from one pool's stats. */
interface Family {
  readonly suffix: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: (stats: PoolStats, labels: Labels, name: string) => Sample[];
}

const DEFAULT_PREFIX = 'accountdb_pool_';
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** `DestroyReason`s as Prometheus label values (snake_case). */
const REASON_LABEL: Readonly<Record<DestroyReason, string>> = {
  error: 'error',
  broken: 'broken',
  notIdle: 'not_idle',
  lifetime: 'lifetime',
  idleTimeout: 'idle_timeout',
  validation: 'validation',
  queryTimeout: 'query_timeout',
  hook: 'hook',
  released: 'released',
  closed: 'closed',
  role: 'role',
  lag: 'lag',
  hostDown: 'host_down',
};

const field =
  (read: (stats: PoolStats) => number) =>
  (stats: PoolStats, labels: Labels): Sample[] => [{ value: read(stats), labels }];

/** Cumulative buckets, `+Inf`, sum and count, straight from the pool's histogram: O(buckets) per scrape. */
function histogram(read: (stats: PoolStats) => LatencyHistogram) {
  return (stats: PoolStats, labels: Labels, name: string): Sample[] => {
    const h = read(stats);
    const samples: Sample[] = h.buckets.map((le, i) => ({
      value: h.counts[i] ?? 0,
      labels: { ...labels, le },
      metricName: `${name}_bucket`,
    }));
    samples.push(
      { value: h.count, labels: { ...labels, le: '+Inf' }, metricName: `${name}_bucket` },
      { value: h.sum, labels, metricName: `${name}_sum` },
      { value: h.count, labels, metricName: `${name}_count` },
    );
    return samples;
  };
}

const FAMILIES: readonly Family[] = [
  {
    suffix: 'connections',
    type: 'gauge',
    help: 'Connections by state: idle (open, in the pool), active (leased), pending (being opened).',
    samples: (s, labels) => [
      { value: s.idle, labels: { ...labels, state: 'idle' } },
      { value: s.active, labels: { ...labels, state: 'active' } },
      { value: s.pending, labels: { ...labels, state: 'pending' } },
    ],
  },
  {
    suffix: 'waiting_acquires',
    type: 'gauge',
    help: 'acquire() calls queued for a connection.',
    samples: field((s) => s.waiting),
  },
  { suffix: 'max_connections', type: 'gauge', help: 'Configured maxConnections.', samples: field((s) => s.max) },
  { suffix: 'min_connections', type: 'gauge', help: 'Configured minConnections.', samples: field((s) => s.min) },
  { suffix: 'acquires_total', type: 'counter', help: 'Connections handed out by acquire().', samples: field((s) => s.acquires) },
  {
    suffix: 'acquire_timeouts_total',
    type: 'counter',
    help: 'acquire() calls that gave up after acquireTimeoutMs (PoolTimeoutError).',
    samples: field((s) => s.acquireTimeouts),
  },
  {
    suffix: 'connections_created_total',
    type: 'counter',
    help: 'Connections opened and ready (logged in, onConnect done).',
    samples: field((s) => s.connects),
  },
  {
    suffix: 'connect_failures_total',
    type: 'counter',
    help: 'Failed attempts to open a connection, one per host.',
    samples: field((s) => s.connectFailures),
  },
  {
    suffix: 'connections_destroyed_total',
    type: 'counter',
    help: 'Connections closed, by reason.',
    samples: (s, labels) =>
      (Object.keys(REASON_LABEL) as DestroyReason[]).map((reason) => ({
        value: s.destroyed[reason],
        labels: { ...labels, reason: REASON_LABEL[reason] },
      })),
  },
  {
    suffix: 'retries_total',
    type: 'counter',
    help: 'Retries after transient connection failures (withConnectionRetry).',
    samples: field((s) => s.retries),
  },
  {
    suffix: 'leaks_detected_total',
    type: 'counter',
    help: 'Leases held past leakDetectionThresholdMs.',
    samples: field((s) => s.leaksDetected),
  },
  {
    suffix: 'acquire_wait_seconds',
    type: 'histogram',
    help: 'Time acquire() waited for a connection.',
    samples: histogram((s) => s.acquireWaitSeconds),
  },
  {
    suffix: 'hold_seconds',
    type: 'histogram',
    help: 'Time a connection was leased, acquire to release.',
    samples: histogram((s) => s.holdSeconds),
  },
];

/** Label names our own families use: a pool's labels may not take them. */
const RESERVED_LABELS = new Set(['le', 'state', 'reason', 'quantile']);

interface Source {
  readonly pool: Pool;
  readonly labels: Labels;
}

/** The pools collected with one registry and prefix, and the metric objects registered for them. */
class CollectorGroup {
  readonly sources = new Map<string, Source>();
  readonly metrics: { name: string }[];
  /** Stats read once per scrape: every family of one scrape reads the same snapshot of each pool. */
  #snapshot: Map<Source, PoolStats> | undefined;

  constructor(
    readonly registry: Registry<RegistryContentType>,
    prefix: string,
  ) {
    this.metrics = FAMILIES.map((family) => this.#metric(family, `${prefix}${family.suffix}`));
    // prom-client types registerMetric for its own classes; it only calls name/help/type/get (and
    // `aggregator` in cluster mode), which these objects have.
    const registered: string[] = [];
    try {
      for (const metric of this.metrics) {
        registry.registerMetric(metric as unknown as Metric);
        registered.push(metric.name);
      }
    } catch (err) {
      // A name the registry already has (someone else's metric): leave the registry as it was.
      for (const name of registered) registry.removeSingleMetric(name);
      throw err;
    }
  }

  #metric(family: Family, name: string) {
    const metric = {
      name,
      help: family.help,
      type: family.type,
      aggregator: 'sum' as const,
      get: async () => {
        const values: Sample[] = [];
        for (const [source, stats] of this.#stats()) values.push(...family.samples(stats, source.labels, metric.name));
        return { name: metric.name, help: family.help, type: family.type, aggregator: 'sum' as const, values };
      },
      reset: () => {},
    };
    return metric;
  }

  #stats(): Map<Source, PoolStats> {
    if (this.#snapshot) return this.#snapshot;
    const snapshot = new Map<Source, PoolStats>();
    for (const source of this.sources.values()) snapshot.set(source, source.pool.stats());
    // prom-client calls every metric's get() in one synchronous pass; the next scrape reads anew.
    this.#snapshot = snapshot;
    queueMicrotask(() => {
      this.#snapshot = undefined;
    });
    return snapshot;
  }
}

const groups = new WeakMap<Registry<RegistryContentType>, Map<string, CollectorGroup>>();

/**
 * Report `pool.stats()` through prom-client, read at scrape time (no timers, nothing recorded twice):
 * `accountdb_pool_connections{state="idle|active|pending"}`, `accountdb_pool_waiting_acquires`,
 * `accountdb_pool_max_connections`, `accountdb_pool_min_connections`, counters
 * `accountdb_pool_acquires_total`, `accountdb_pool_acquire_timeouts_total`,
 * `accountdb_pool_connections_created_total`, `accountdb_pool_connect_failures_total`,
 * `accountdb_pool_connections_destroyed_total{reason}`, `accountdb_pool_retries_total`,
 * `accountdb_pool_leaks_detected_total`, and histograms `accountdb_pool_acquire_wait_seconds` and
 * `accountdb_pool_hold_seconds` (buckets, sum and count since the pool was created, so they aggregate
 * across pools and instances). A scrape costs the same however many acquires the pool has seen.
 * Throws `ConfigError` for an invalid prefix or label, or labels another pool in the registry already has.
 */
export function createPoolCollector(pool: Pool, options: PoolCollectorOptions = {}): PoolCollector {
  const registry = options.registry ?? defaultRegistry;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const labels: Labels = { ...options.labels };
  const byPrefix = groups.get(registry) ?? new Map<string, CollectorGroup>();
  const existing = byPrefix.get(prefix);
  const key = labelKey(labels);

  const problems: ConfigProblem[] = [];
  if (!METRIC_PREFIX.test(prefix)) problems.push({ variable: 'prefix', message: 'must match [a-zA-Z_:][a-zA-Z0-9_:]*' });
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__'))
      problems.push({
        variable: `labels.${name}`,
        message: 'is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)',
      });
    else if (RESERVED_LABELS.has(name))
      problems.push({ variable: `labels.${name}`, message: 'is a label the pool metrics use themselves' });
    if (typeof value !== 'string')
      problems.push({ variable: `labels.${name}`, message: `must be a string, got ${typeof value}` });
  }
  if (existing) {
    const [first] = existing.sources.values();
    const names = (l: Labels) => Object.keys(l).sort().join(',');
    if (first && names(first.labels) !== names(labels))
      problems.push({
        variable: 'labels',
        message: `pools collected in one registry need the same label names: have [${names(first.labels)}], got [${names(labels)}]`,
      });
    else if (existing.sources.has(key))
      problems.push({ variable: 'labels', message: 'another pool is collected in this registry with the same labels' });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  let group = existing;
  if (!group) {
    group = new CollectorGroup(registry, prefix);
    byPrefix.set(prefix, group);
    groups.set(registry, byPrefix);
  }
  const source: Source = { pool, labels };
  group.sources.set(key, source);
  const owner = group;
  return {
    remove: () => {
      if (owner.sources.get(key) !== source) return;
      owner.sources.delete(key);
      if (owner.sources.size > 0) return;
      for (const metric of owner.metrics) owner.registry.removeSingleMetric(metric.name);
      byPrefix.delete(prefix);
    },
  };
}

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
