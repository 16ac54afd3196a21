export { LOCAL_SERVICES, loadLocalConfig, localConfigSchema } from './config.ts';
export type { LocalConfig, LocalService } from './config.ts';
export { startLocal } from './local.ts';
export type { LocalSystem } from './local.ts';
export { supervise } from './supervisor.ts';
export type { SupervisedProcess, SuperviseOptions } from './supervisor.ts';
