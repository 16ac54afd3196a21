import type { Job, Priority, RouteDecision } from './job.ts';

/** Tunables of the cost classifier. Defaults are the product's contract. */
export interface ClassifierOptions {
  /** `rows` is divided by this. @default 1_000_000 */
  rowsDivisor: number;
  /** `estimated_runtime_sec` is divided by this. @default 10 */
  runtimeDivisor: number;
  /** Cost strictly above this goes to spark. @default 10 */
  sparkThreshold: number;
  /** Cost strictly above this (and not spark) goes to ml. @default 4 */
  mlThreshold: number;
  /** Cost multiplier per priority. @default high and urgent 1.5, others 1 */
  priorityMultipliers: Readonly<Record<Priority, number>>;
}

export const DEFAULT_CLASSIFIER_OPTIONS: Readonly<ClassifierOptions> = Object.freeze({
  rowsDivisor: 1_000_000,
  runtimeDivisor: 10,
  sparkThreshold: 10,
  mlThreshold: 4,
  priorityMultipliers: Object.freeze({ low: 1, normal: 1, high: 1.5, urgent: 1.5 }),
});

type ClassifierInput = Pick<Job, 'rows' | 'estimatedRuntimeSec' | 'priority' | 'latencySensitive'>;

/** The estimated cost of a job: rows / rowsDivisor + runtime / runtimeDivisor, times the priority multiplier. */
export function estimateCost(job: ClassifierInput, options: ClassifierOptions = DEFAULT_CLASSIFIER_OPTIONS): number {
  const base = job.rows / options.rowsDivisor + job.estimatedRuntimeSec / options.runtimeDivisor;
  return base * options.priorityMultipliers[job.priority];
}

/**
 * Routes a job to the cheapest environment that fits it. Comparisons are strict: a cost of exactly
 * the spark threshold goes to ml, exactly the ml threshold goes to batch.
 */
export function classify(job: ClassifierInput, options: ClassifierOptions = DEFAULT_CLASSIFIER_OPTIONS): RouteDecision {
  const cost = estimateCost(job, options);
  const shown = formatCost(cost);
  if (job.latencySensitive) {
    return { queue: 'actor-jobs', cost, reason: `latency-sensitive (cost ${shown})` };
  }
  if (cost > options.sparkThreshold) {
    return { queue: 'spark-jobs', cost, reason: `cost ${shown} > ${options.sparkThreshold}` };
  }
  if (cost > options.mlThreshold) {
    return { queue: 'ml-jobs', cost, reason: `${options.mlThreshold} < cost ${shown} <= ${options.sparkThreshold}` };
  }
  return { queue: 'batch-jobs', cost, reason: `cost ${shown} <= ${options.mlThreshold}` };
}

const formatCost = (cost: number): string => String(Math.round(cost * 1e6) / 1e6);
