import { defineConfig } from 'vitest/config';

// One PostgreSQL for the whole run (see tooling/test-db); each test file creates its own database on it.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'tooling/bench', 'tooling/ecosystem'],
    globalSetup: ['./tooling/test-db/src/global-setup.ts'],
  },
});
