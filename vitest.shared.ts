import { defineProject } from 'vitest/config';

/** Per-package vitest project: tests in `test/`, generous timeouts for real-database work. */
export function packageProject(name: string) {
  return defineProject({
    test: {
      name,
      include: ['test/**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 120_000,
      pool: 'forks',
    },
  });
}
