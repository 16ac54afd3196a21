import { describe, expect, it } from 'vitest';
import { PriorityGate, isOrchestratorError } from '@orch/core';

/** Lets queued promise callbacks run, so a test can tell a pending promise from a settled one. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Observes a promise without awaiting it. */
function track<T>(promise: Promise<T>): { readonly settled: boolean; readonly value?: T; readonly error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  void promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

describe('PriorityGate', () => {
  it('given N permits, when N+1 acquire, then N are granted at once and the last waits for a release', async () => {
    const gate = new PriorityGate(2, 2);

    const first = track(gate.acquire(1));
    const second = track(gate.acquire(1));
    const third = track(gate.acquire(1));
    await flush();

    expect([first.settled, second.settled, third.settled]).toEqual([true, true, false]);
    first.value?.();
    await flush();
    expect(third.settled).toBe(true);
    expect(third.error).toBeUndefined();
  });

  it('given waiters of several classes, when permits free, then the most urgent class goes first, first come first served within it', async () => {
    const gate = new PriorityGate(1, 3);
    const release = await gate.acquire(0);
    const order: string[] = [];
    const wait = (classIndex: number, name: string): Promise<void> =>
      gate.acquire(classIndex).then((next) => {
        order.push(name);
        next();
      });

    const all = Promise.all([
      wait(2, 'low-1'),
      wait(1, 'standard-1'),
      wait(2, 'low-2'),
      wait(0, 'urgent-1'),
      wait(1, 'standard-2'),
      wait(0, 'urgent-2'),
    ]);
    release();
    await all;

    expect(order).toEqual(['urgent-1', 'urgent-2', 'standard-1', 'standard-2', 'low-1', 'low-2']);
  });

  it('given a release function, when it is called twice, then only one permit is returned', async () => {
    const gate = new PriorityGate(1, 1);
    const release = await gate.acquire(0);

    release();
    release();
    const a = track(gate.acquire(0));
    const b = track(gate.acquire(0));
    await flush();

    expect([a.settled, b.settled]).toEqual([true, false]);
  });

  it('given a waiting acquire, when its signal aborts, then it rejects with the reason and the permit goes to the next waiter', async () => {
    const gate = new PriorityGate(1, 2);
    const release = await gate.acquire(0);
    const controller = new AbortController();
    const aborted = track(gate.acquire(0, controller.signal));
    const next = track(gate.acquire(1));

    controller.abort(new Error('lock lost'));
    await flush();
    expect(aborted.error).toEqual(new Error('lock lost'));
    release();
    await flush();

    expect(next.settled).toBe(true);
    expect(next.error).toBeUndefined();
  });

  it('given granted and waiting acquires, when the gate closes, then waiters reject, later acquires reject and granted permits stay usable', async () => {
    const gate = new PriorityGate(1, 2);
    const running = await gate.acquire(1);
    const waitingUrgent = track(gate.acquire(0));
    const waitingStandard = track(gate.acquire(1));

    gate.close();
    await flush();

    for (const waiter of [waitingUrgent, waitingStandard]) {
      expect(isOrchestratorError(waiter.error)).toBe(true);
      expect(waiter.error).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', retryable: true });
    }
    await expect(gate.acquire(0)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(() => running()).not.toThrow();
  });

  it('given headroom and every permit held, when each class acquires, then only class 0 gets a spare permit, up to the headroom', async () => {
    const gate = new PriorityGate(2, 2, { headroom: 1 });
    await gate.acquire(1);
    await gate.acquire(1);

    const standard = track(gate.acquire(1));
    const urgent = track(gate.acquire(0));
    const secondUrgent = track(gate.acquire(0));
    await flush();

    expect([standard.settled, urgent.settled, secondUrgent.settled]).toEqual([false, true, false]);
  });

  it('given a spare permit held, when it is released, then it goes to a waiting class-0 acquire and never to another class', async () => {
    const gate = new PriorityGate(1, 2, { headroom: 1 });
    const ordinary = await gate.acquire(1);
    const spare = await gate.acquire(0);
    const standard = track(gate.acquire(1));
    const urgent = track(gate.acquire(0));

    spare();
    await flush();
    expect([standard.settled, urgent.settled]).toEqual([false, true]);

    urgent.value?.();
    await flush();
    expect(standard.settled).toBe(false);
    ordinary();
    await flush();
    expect(standard.settled).toBe(true);
  });

  it('given no free permit, when acquiring for an unknown class, then it rejects with a RangeError', async () => {
    const gate = new PriorityGate(1, 2);
    await gate.acquire(0);

    await expect(gate.acquire(2)).rejects.toThrow(RangeError);
  });
});
