import { type MigrationProgress, runMigrations } from '@accountdb/migrate';
import { AccountDbError, type Logger, type Pool } from '@accountdb/pool';
import { execute, sql } from '@accountdb/query';
import { assertSafeLoginRole, checkRlsEnabled, UnsafeLoginRoleError } from '@accountdb/rls';
import { REQUIRED_TABLES } from './policies.js';

/** The app's migrations, found from this file whether it runs from `src/` or `dist/`. */
export const MIGRATIONS_DIR = new URL('../migrations', import.meta.url).pathname;

/** The seed's `init_database` found something to fix. `problems` names each, with what to do. */
export class InitDatabaseError extends AccountDbError {
  declare readonly code: 'INIT_DATABASE_FAILED';
  readonly problems: readonly string[];

  constructor(problems: readonly string[], attempts: number) {
    super(
      'INIT_DATABASE_FAILED',
      `The database is not ready for the app (after ${attempts} attempt${attempts === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.problems = problems;
  }
}

/**
 * The seed's `init_database` checks, as a list of problems (empty: all good), run on the login
 * role's pool: each required table exists, has RLS enabled and FORCEd, the login role bypasses no
 * policy (`assertSafeLoginRole`) and owns none of the tables.
 */
export async function checkInitDatabase(pool: Pool): Promise<string[]> {
  const problems: string[] = [];
  for (const t of await checkRlsEnabled(pool, REQUIRED_TABLES)) {
    if (!t.exists) problems.push(`table ${t.table} is missing: run the migrations (migrations/0001_tables.sql)`);
    else if (!t.rlsEnabled || !t.rlsForced) {
      problems.push(
        `table ${t.table} has Row-Level Security ${t.rlsEnabled ? 'enabled but not FORCEd' : 'disabled'}: ` +
          `apply migrations/R__row_level_security.sql (ALTER TABLE ${t.table} ENABLE and FORCE ROW LEVEL SECURITY)`,
      );
    }
  }
  try {
    await assertSafeLoginRole(pool);
  } catch (err) {
    if (!(err instanceof UnsafeLoginRoleError)) throw err;
    problems.push(...err.problems.map((p) => `login role: ${p} (ALTER ROLE ... NOSUPERUSER NOBYPASSRLS)`));
  }
  const owned = await execute(
    pool,
    sql`select c.relname as name, pg_catalog.pg_get_userbyid(c.relowner) as owner
          from pg_catalog.pg_class c
         where c.oid = any (select pg_catalog.to_regclass(t) from unnest(${REQUIRED_TABLES}::text[]) t)
           and pg_catalog.pg_has_role(session_user, c.relowner, 'USAGE')`,
  );
  for (const row of owned) {
    problems.push(
      `login role owns table ${row.name} (through role ${row.owner}): the tables must belong to the migration role; ` +
        `ALTER TABLE ${row.name} OWNER TO <migration role>`,
    );
  }
  return problems;
}

/** Where start-up is, for `/health/startup` and the logs. */
export interface StartupProgress {
  phase: 'pending' | 'migrating' | 'checking' | 'ready' | 'failed';
  /** One line for humans: the file being applied, the check attempt, what failed. */
  detail: string;
  /** Migration files applied by this start so far. */
  migrationsApplied: number;
  /** Check attempts so far. */
  checkAttempts: number;
  /** When the phase began (ISO 8601). */
  since: string;
}

export interface StartupOptions {
  /** Owner of the tables: runs the migrations. */
  admin: Pool;
  /** The login role's pool: runs the checks, as the app will. */
  pool: Pool;
  logger: Logger;
  migrationsDir?: string;
  /** `init_database` retries after the first attempt. Default 5 (the seed's). */
  maxRetries?: number;
  /** Between check attempts, ms. Default 2,000 (the seed's). */
  retryIntervalMs?: number;
  /** Waiting for another instance's migration lock, ms. Default 120,000. */
  migrationLockTimeoutMs?: number;
}

/** What the app reads of start-up: {@link Startup} implements it. */
export interface StartupState {
  readonly ready: boolean;
  readonly progress: Readonly<StartupProgress>;
}

/**
 * Start-up in phases: migrations (under `@accountdb/migrate`'s advisory lock, so several instances
 * can start together: one applies, the others wait and find nothing to do), then the `init_database`
 * checks with retries. `progress` is what `/health/startup` reports; readiness fails until `ready`.
 */
export class Startup implements StartupState {
  #progress: StartupProgress = {
    phase: 'pending',
    detail: 'not started',
    migrationsApplied: 0,
    checkAttempts: 0,
    since: new Date().toISOString(),
  };
  readonly #options: StartupOptions;

  constructor(options: StartupOptions) {
    this.#options = options;
  }

  get progress(): Readonly<StartupProgress> {
    return this.#progress;
  }

  get ready(): boolean {
    return this.#progress.phase === 'ready';
  }

  #enter(phase: StartupProgress['phase'], detail: string): void {
    this.#progress = { ...this.#progress, phase, detail, since: new Date().toISOString() };
  }

  /** Run both phases. Throws (and stays `failed`) with a message that says what to fix. */
  async run(): Promise<void> {
    const { admin, pool, logger } = this.#options;
    const log = logger.child({ component: 'startup' });
    try {
      this.#enter('migrating', 'waiting for the migration lock');
      const applied = await runMigrations(admin, {
        dir: this.#options.migrationsDir ?? MIGRATIONS_DIR,
        logger,
        migrationLockTimeoutMs: this.#options.migrationLockTimeoutMs ?? 120_000,
        onProgress: (event: MigrationProgress) => {
          if (event.event === 'start') this.#progress.detail = `applying ${event.file} (${event.index}/${event.total})`;
          else if (event.event === 'done') this.#progress.migrationsApplied++;
          else if (event.event === 'lock-wait')
            this.#progress.detail = `waiting for the migration lock (${event.waitedMs} ms): another instance is migrating`;
        },
      });
      log.info(
        { applied: applied.map((m) => m.file) },
        applied.length ? `applied ${applied.length} migrations` : 'migrations up to date',
      );

      const maxRetries = this.#options.maxRetries ?? 5;
      const interval = this.#options.retryIntervalMs ?? 2_000;
      let problems: string[] = [];
      for (let attempt = 1; attempt <= maxRetries + 1; attempt++) {
        this.#progress.checkAttempts = attempt;
        this.#enter('checking', `init_database checks, attempt ${attempt} of ${maxRetries + 1}`);
        try {
          problems = await checkInitDatabase(pool);
        } catch (err) {
          problems = [`could not run the checks: ${(err as Error).message}`];
        }
        if (problems.length === 0) break;
        log.warn({ attempt, problems }, 'init_database checks failed');
        if (attempt <= maxRetries) await new Promise((resolve) => setTimeout(resolve, interval));
      }
      if (problems.length > 0) throw new InitDatabaseError(problems, maxRetries + 1);
      this.#enter('ready', 'migrations applied, init_database checks passed');
      log.info('start-up complete: ready');
    } catch (err) {
      this.#enter('failed', (err as Error).message);
      throw err;
    }
  }
}
