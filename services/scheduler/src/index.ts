export { createScheduleHandler, startScheduler } from './scheduler.ts';
export type { SchedulerDeps, SchedulerOptions } from './scheduler.ts';
export { createReconciler } from './reconciler.ts';
export type { ReconcileReport, Reconciler, ReconcilerDeps, ReconcilerOptions } from './reconciler.ts';
export { loadSchedulerConfig, schedulerConfigSchema } from './config.ts';
export type { SchedulerConfig } from './config.ts';
