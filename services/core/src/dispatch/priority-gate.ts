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
    if (this.closed) return Promise.reject(closingError());
    if (this.available > 0) {
      this.available--;
      return Promise.resolve(this.releaser());
    }
    const queue = this.waiting[classIndex];
    if (!queue) return Promise.reject(new RangeError(`no priority class ${classIndex}`));
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      queue.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const at = queue.indexOf(waiter);
          if (at >= 0) {
            queue.splice(at, 1);
            reject(signal.reason);
          }
        },
        { once: true },
      );
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

const closingError = (): OrchestratorError =>
  new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'consumer is shutting down', { retryable: true });
