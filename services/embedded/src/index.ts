export { startEmbedded } from './embedded.ts';
export type { EmbeddedSystem } from './embedded.ts';
export { embeddedConfigSchema, loadEmbeddedConfig } from './config.ts';
export type { EmbeddedConfig } from './config.ts';
