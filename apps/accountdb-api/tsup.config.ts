import { packageConfig } from '../../tsup.base';

// An app, not a library: one ESM entry point, no type declarations.
export default packageConfig({ entry: ['src/main.ts'], format: ['esm'], dts: false });
