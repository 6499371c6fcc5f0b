export { startEdge, runCli, ROOT, TEST_SECRET } from './edge.js';
export type { EdgeProcess, StartOptions } from './edge.js';
export { TestClient, UpgradeRefused, connect } from './client.js';
export type { Frame, Closed } from './client.js';
export { hsToken } from './tokens.js';
export type { TokenOptions } from './tokens.js';
export * from './keys.js';
export { childEnv, INHERITED_ENV } from './env.js';
