import { packageConfig } from '../../tsup.base';

// An app, not a library: one ESM entry point, no type declarations.
// The private launcher package ships TypeScript source only, so it is bundled in.
export default packageConfig({ entry: ['src/main.ts'], format: ['esm'], dts: false, noExternal: ['@accountdb/local-postgres'] });
