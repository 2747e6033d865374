// Writes migrations/R__row_level_security.sql from src/policies.ts (`pnpm --filter @accountdb/api write:rls`).
import { writeFileSync } from 'node:fs';
import { rowLevelSecuritySql } from '../src/policies.js';

const file = new URL('../migrations/R__row_level_security.sql', import.meta.url);
writeFileSync(file, rowLevelSecuritySql());
console.log(`wrote ${file.pathname}`);
