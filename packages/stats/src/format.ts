const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'] as const;

/**
 * `1536` → `"1.5 kB"`: binary multiples (1 kB = 1024 B) with PostgreSQL's unit names, as
 * `pg_size_pretty` prints them. Every figure in this package is raw; this is the one formatter.
 */
export function formatBytes(bytes: number | null | undefined, fractionDigits = 1): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return 'n/a';
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${sign}${unit === 0 ? value : value.toFixed(fractionDigits)} ${UNITS[unit]}`;
}
