import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '@accountdb/pool';
import { listDirectory } from './files.js';

/** Options of {@link createMigration}. */
export interface CreateMigrationOptions {
  /** Migrations directory (must exist). */
  readonly dir: string;
  /** Free text; becomes the file name's `snake_case` description (letters, digits, `_`). */
  readonly description: string;
  /** Default `versioned`. */
  readonly kind?: 'versioned' | 'repeatable';
  /** Also create an empty `.down.sql` (versioned only). Default false. */
  readonly down?: boolean;
}

/** Files written by {@link createMigration}. */
export interface CreatedMigration {
  readonly file: string;
  readonly path: string;
  readonly downPath?: string;
}

/**
 * Create the next migration file: version = newest + 1, zero-padded like the existing files (4 digits in an
 * empty directory). Never overwrites a file. Writes no SQL to the database.
 */
export async function createMigration(options: CreateMigrationOptions): Promise<CreatedMigration> {
  const slug =
    typeof options?.description === 'string'
      ? options.description
          .normalize('NFKD')
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, '_')
          .replace(/^_+|_+$/g, '')
          .slice(0, 100)
      : '';
  const problems = [];
  if (typeof options?.dir !== 'string' || options.dir === '')
    problems.push({ variable: 'dir', message: 'must be a directory path' });
  if (slug === '') problems.push({ variable: 'description', message: 'must contain letters or digits' });
  if (options?.kind !== undefined && options.kind !== 'versioned' && options.kind !== 'repeatable')
    problems.push({ variable: 'kind', message: 'must be "versioned" or "repeatable"' });
  if (problems.length > 0) throw new ConfigError(problems);
  const names = await listDirectory(options.dir);
  let file: string;
  if (options.kind === 'repeatable') {
    file = `R__${slug}.sql`;
  } else {
    let newest = 0n;
    let width = 4;
    for (const name of names) {
      const m = /^(\d{1,18})_.*\.sql$/.exec(name);
      if (!m) continue;
      width = Math.max(width, m[1]!.length);
      if (BigInt(m[1]!) > newest) newest = BigInt(m[1]!);
    }
    file = `${(newest + 1n).toString().padStart(width, '0')}_${slug}.sql`;
  }
  const path = join(options.dir, file);
  await write(
    path,
    `-- ${options.description.replace(/[\r\n]+/g, ' ')}\n-- Headers: -- migrate:no-transaction, -- migrate:lock-timeout=5s\n\n`,
  );
  if (options.down && options.kind !== 'repeatable') {
    const downPath = path.replace(/\.sql$/, '.down.sql');
    await write(downPath, `-- Reverts ${file}\n\n`);
    return { file, path, downPath };
  }
  return { file, path };
}

async function write(path: string, text: string): Promise<void> {
  // 'wx': fail rather than overwrite (two people creating the same version at once).
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}
