import { packageConfig } from '../../tsup.base';

// Three entry points share one copy of each module (splitting), so `internal` and `pg` helpers and the public API agree.
export default packageConfig({ entry: ['src/index.ts', 'src/internal.ts', 'src/pg.ts'], splitting: true });
