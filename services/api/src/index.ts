export { buildApp } from './app.ts';
export type { ApiDeps, ApiOptions } from './app.ts';
export { apiConfigSchema, apiServiceConfigSchema, loadApiConfig, loadApiServiceConfig } from './config.ts';
export type { ApiConfig, ApiServiceConfig } from './config.ts';
