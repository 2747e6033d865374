import { packageConfig } from '../../tsup.base';

// Entry points (the API, `internal`, the `pg` face, the `prometheus` subpath) share one copy of each module
// (splitting), so `internal` and `pg` helpers and the public API agree.
export default packageConfig({ entry: ['src/index.ts', 'src/internal.ts', 'src/pg.ts', 'src/prometheus.ts'], splitting: true });
