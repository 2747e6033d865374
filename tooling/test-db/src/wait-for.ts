/** Poll `condition` until it holds; throws after `limitMs` (a generous bound for a loaded machine, not a timing assertion). */
export async function waitFor(condition: () => Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs one statement with bound values: `db.admin`, or `(text, values) => lease.query(text, values)`. */
export type RunStatement = (text: string, values: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/** The `pg_stat_activity` state of backend `pid` (`active`, `idle`, …), or null when it is gone. */
export async function backendState(run: RunStatement, pid: number): Promise<string | null> {
  const { rows } = await run('select state from pg_catalog.pg_stat_activity where pid = $1', [pid]);
  return (rows[0]?.state as string | null | undefined) ?? null;
}
