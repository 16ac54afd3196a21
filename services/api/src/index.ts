export { buildApp } from './app.ts';
export type { ApiDeps, ApiOptions } from './app.ts';
export { apiConfigSchema, loadApiConfig } from './config.ts';
export type { ApiConfig } from './config.ts';
