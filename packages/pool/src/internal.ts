/**
 * `@accountdb/pool/internal`: helpers the `@accountdb/*` packages share, not part of the public API.
 * They may change in any release without notice; applications should not import them.
 */
export { toBatchStatement } from './batch.js';
export { describeCause } from './errors.js';
export { identifierProblem, type NameProblem, parseIdentifier, parseQualifiedName, quoteIdentifier } from './identifier.js';
export { packageLogger } from './logger.js';
export { withTimeout } from './timers.js';
export { type BeginOptionProblem, beginStatement } from './transaction.js';
