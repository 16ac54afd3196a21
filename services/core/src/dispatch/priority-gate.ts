import { OrchestratorError } from '../errors.ts';

/**
 * A semaphore whose waiters are served by class: a permit always goes to the waiter of the lowest
 * class index (0 = most urgent), first come first served within a class.
 */
export class PriorityGate {
  private available: number;
  private readonly waiting: { resolve: (release: () => void) => void; reject: (e: unknown) => void }[][];
  private closed = false;

  constructor(permits: number, classes: number) {
    this.available = permits;
    this.waiting = Array.from({ length: classes }, () => []);
  }

  /** Resolves with a release function once a permit is granted to this class. */
  acquire(classIndex: number, signal?: AbortSignal): Promise<() => void> {
    const queue = this.waiting[classIndex];
    if (!queue) return Promise.reject(new RangeError(`no priority class ${classIndex}`));
    if (this.closed) return Promise.reject(closingError());
    if (signal?.aborted) return Promise.reject(asError(signal.reason));
    if (this.available > 0) {
      this.available--;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const at = queue.indexOf(waiter);
        if (at >= 0) {
          queue.splice(at, 1);
          reject(asError(signal?.reason));
        }
      };
      const waiter = {
        resolve: (release: () => void) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        reject: (e: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(asError(e));
        },
      };
      queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Rejects every waiter; permits already granted stay valid. */
  close(): void {
    this.closed = true;
    for (const queue of this.waiting) {
      for (const waiter of queue.splice(0)) waiter.reject(closingError());
    }
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.find((queue) => queue.length > 0)?.shift();
      if (next) next.resolve(this.releaser());
      else this.available++;
    };
  }
}

const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason)));

const closingError = (): OrchestratorError =>
  new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'consumer is shutting down', { retryable: true });
