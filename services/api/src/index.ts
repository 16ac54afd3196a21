export { buildApp } from './app.ts';
export type { ApiDeps, ApiOptions } from './app.ts';
export {
  apiConfigSchema,
  apiServiceConfigSchema,
  loadApiConfig,
  loadApiOptions,
  loadApiServiceConfig,
} from './config.ts';
export { generateApiKey, hashApiKey, parseApiKeys } from './auth.ts';
export type { ApiKeyEntry, Principal } from './auth.ts';
export type { ApiConfig, ApiServiceConfig } from './config.ts';
