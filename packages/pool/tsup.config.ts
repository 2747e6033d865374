import { packageConfig } from '../../tsup.base';

// Two entry points share one copy of each module (splitting), so `internal` helpers and the public API agree.
export default packageConfig({ entry: ['src/index.ts', 'src/internal.ts'], splitting: true });
