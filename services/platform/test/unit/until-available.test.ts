import { OrchestratorError } from '@orch/core';
import { describe, expect, it } from 'vitest';
import { untilAvailable } from '../../src/runtime/index.ts';

const unavailable = () => new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'database restarting', { retryable: true });

describe('untilAvailable', () => {
  it('given a dependency that comes back, when the operation fails meanwhile, then it is tried again until it succeeds', async () => {
    let calls = 0;
    const value = await untilAvailable(
      () => {
        calls += 1;
        return calls < 3 ? Promise.reject(unavailable()) : Promise.resolve('ok');
      },
      { what: 'test' },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
  });

  it('given any other error, then it is thrown at once, untried again', async () => {
    let calls = 0;
    const boom = new OrchestratorError('CONFLICT', 'boom');
    await expect(
      untilAvailable(
        () => {
          calls += 1;
          return Promise.reject(boom);
        },
        { what: 'test' },
      ),
    ).rejects.toBe(boom);
    expect(calls).toBe(1);
  });

  it('given the signal aborts (the message lock is lost), then it stops waiting with the abort reason', async () => {
    const controller = new AbortController();
    const reason = new OrchestratorError('LOCK_LOST', 'lock lost');
    const waiting = untilAvailable(() => Promise.reject(unavailable()), { what: 'test', signal: controller.signal });
    setTimeout(() => controller.abort(reason), 50);
    await expect(waiting).rejects.toBe(reason);
  });

  it('given the dependency stays away, then the last error is thrown after maxWaitInMs', async () => {
    await expect(
      untilAvailable(() => Promise.reject(unavailable()), { what: 'test', maxWaitInMs: 300 }),
    ).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });
});
