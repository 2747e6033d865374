import { defineConfig, type Options } from 'tsup';

/** The one tsup config every published package builds with: ESM + CJS + .d.ts/.d.cts, Node 20. */
export function packageConfig(overrides: Options = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    ...overrides,
  });
}
