import { OrchestratorError } from '../errors.ts';

export interface PriorityGateOptions {
  /**
   * Extra permits only class 0 may take, when every ordinary permit is held: the most urgent work
   * starts at once instead of waiting for a running one to finish. @default 0
   */
  headroom?: number;
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (e: unknown) => void;
}

/**
 * A semaphore whose waiters are served by class: a permit always goes to the waiter of the lowest
 * class index (0 = most urgent), first come first served within a class. Class 0 may also use the
 * `headroom` permits, so at most `permits + headroom` are held at once, and at most `permits` by
 * the other classes.
 */
export class PriorityGate {
  private available: number;
  private spare: number;
  private readonly waiting: Waiter[][];
  private closed = false;

  constructor(permits: number, classes: number, options: PriorityGateOptions = {}) {
    this.available = permits;
    this.spare = options.headroom ?? 0;
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
      return Promise.resolve(this.releaser(false));
    }
    if (classIndex === 0 && this.spare > 0) {
      this.spare--;
      return Promise.resolve(this.releaser(true));
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const at = queue.indexOf(waiter);
        if (at >= 0) {
          queue.splice(at, 1);
          reject(asError(signal?.reason));
        }
      };
      const waiter: Waiter = {
        resolve: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        reject: (e) => {
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

  private releaser(spare: boolean): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // A spare permit passes only to the most urgent class; an ordinary one to whoever is first.
      const next = (spare ? this.waiting[0] : this.waiting.find((queue) => queue.length > 0))?.shift();
      if (next) next.resolve(this.releaser(spare));
      else if (spare) this.spare++;
      else this.available++;
    };
  }
}

const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason)));

const closingError = (): OrchestratorError =>
  new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'consumer is shutting down', { retryable: true });
