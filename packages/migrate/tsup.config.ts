import { packageConfig } from '../../tsup.base';

// The CLI is a second entry; esbuild keeps the shebang of src/cli.ts.
export default packageConfig({ entry: ['src/index.ts', 'src/cli.ts'] });
