import type { HandlerRegistry, JobHandler } from './handler.ts';
import { runSynthetic } from './synthetic.ts';

/** The built-in handlers, plus any extra ones (a deployment's own job types). */
export function createHandlerRegistry(extra: Record<string, JobHandler> = {}): HandlerRegistry {
  return new Map<string, JobHandler>([['synthetic', runSynthetic], ...Object.entries(extra)]);
}
