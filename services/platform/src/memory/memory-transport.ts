import { randomUUID } from 'node:crypto';
import { OrchestratorError, describeError, isOrchestratorError } from '@orch/core';
import type {
  ConsumeOptions,
  DeadLetteredMessage,
  MessageHandler,
  OutgoingMessage,
  QueueDepth,
  QueueTransport,
  SendOptions,
  Subscription,
} from '@orch/core';
import {
  DEFAULT_LOCK_DURATION_IN_MS,
  DEFAULT_MAX_AUTO_LOCK_RENEWAL_DURATION_IN_MS,
  DEFAULT_MAX_DELIVERY_COUNT,
  DEFAULT_PEEK_MAX_COUNT,
} from '../shared/transport-defaults.ts';

/** Settings of one queue, as Service Bus sets them on the entity. */
export interface MemoryQueueOptions {
  /** How long a delivery stays locked without renewal. @default 60000 */
  lockDurationInMs?: number;
  /** Deliveries after which a message that is still abandoned is dead-lettered. @default 10 */
  maxDeliveryCount?: number;
}

export interface MemoryTransportOptions extends MemoryQueueOptions {
  /** Overrides of the defaults above for individual queues, by queue name. */
  queues?: Readonly<Record<string, MemoryQueueOptions>>;
}

/**
 * An in-process {@link QueueTransport} with Azure Service Bus semantics: peek-lock delivery with a
 * lock that is auto-renewed while the handler runs, abandon to the front of the queue, dead-lettering
 * after `maxDeliveryCount` deliveries, and scheduled messages. Queues are created on first use.
 *
 * Not durable: queued messages are lost with the process. Bodies are copied with `structuredClone`
 * when sent and again for every delivery, so neither the sender nor a handler can change what is
 * redelivered. After {@link QueueTransport.close} every send and consume rejects with a retryable
 * `DEPENDENCY_UNAVAILABLE` error; depth and dead-letter reads keep working.
 *
 * @throws RangeError when an option is not a positive number (an integer for `maxDeliveryCount`).
 */
export function createMemoryTransport(options: MemoryTransportOptions = {}): QueueTransport {
  const defaults = resolveQueueOptions(options, 'options');
  const overrides = new Map<string, Required<MemoryQueueOptions>>();
  for (const [name, queueOptions] of Object.entries(options.queues ?? {})) {
    overrides.set(name, resolveQueueOptions({ ...defaults, ...queueOptions }, `options.queues[${name}]`));
  }
  const queues = new Map<string, MemoryQueue>();
  let closing: Promise<void> | undefined;

  const queueOf = (name: string): MemoryQueue => {
    let queue = queues.get(name);
    if (!queue) {
      if (typeof name !== 'string' || name.length === 0) throw new RangeError('queue name must not be empty');
      queue = new MemoryQueue(overrides.get(name) ?? defaults);
      queues.set(name, queue);
    }
    return queue;
  };
  const assertOpen = (): void => {
    if (closing) {
      throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'the memory transport is closed', { retryable: true });
    }
  };

  return {
    kind: 'memory',
    durable: false,

    send<T>(queue: string, body: T, sendOptions: SendOptions = {}): Promise<void> {
      return attempt(() => {
        assertOpen();
        sendOptions.abortSignal?.throwIfAborted();
        const target = queueOf(queue);
        target.enqueue(newMessage(body, sendOptions.messageId), sendOptions.delayInMs ?? 0);
        target.dispatch();
      });
    },

    sendBatch<T>(
      queue: string,
      messages: readonly OutgoingMessage<T>[],
      batchOptions: { abortSignal?: AbortSignal } = {},
    ): Promise<void> {
      return attempt(() => {
        assertOpen();
        batchOptions.abortSignal?.throwIfAborted();
        const target = queueOf(queue);
        // Copy every body before enqueuing any, so a body that cannot be cloned rejects the whole batch.
        const prepared = messages.map((m) => ({
          message: newMessage(m.body, m.messageId),
          delayInMs: m.delayInMs ?? 0,
        }));
        for (const { message, delayInMs } of prepared) target.enqueue(message, delayInMs);
        target.dispatch();
      });
    },

    consume<T>(queue: string, handler: MessageHandler<T>, consumeOptions: ConsumeOptions = {}): Promise<Subscription> {
      return attempt(() => {
        assertOpen();
        const concurrency = consumeOptions.concurrency ?? 1;
        if (!Number.isInteger(concurrency) || concurrency < 1) {
          throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
        }
        const maxRenewal =
          consumeOptions.maxAutoLockRenewalDurationInMs ?? DEFAULT_MAX_AUTO_LOCK_RENEWAL_DURATION_IN_MS;
        if (!(maxRenewal >= 0)) {
          throw new RangeError(`maxAutoLockRenewalDurationInMs must not be negative, got ${maxRenewal}`);
        }
        const target = queueOf(queue);
        const consumer = target.addConsumer(handler as MessageHandler<unknown>, concurrency, maxRenewal);
        return { close: () => target.removeConsumer(consumer) };
      });
    },

    getQueueDepth(queue: string): Promise<QueueDepth> {
      return attempt(() => queues.get(queue)?.depth() ?? { active: 0, scheduled: 0, deadLetter: 0 });
    },

    peekDeadLetters<T>(queue: string, peekOptions: { maxCount?: number } = {}): Promise<DeadLetteredMessage<T>[]> {
      return attempt(() => {
        const maxCount = peekOptions.maxCount ?? DEFAULT_PEEK_MAX_COUNT;
        return (queues.get(queue)?.peekDeadLetters(maxCount) ?? []) as DeadLetteredMessage<T>[];
      });
    },

    close(): Promise<void> {
      closing ??= Promise.all([...queues.values()].map((queue) => queue.close())).then(() => undefined);
      return closing;
    },
  };
}

/** Runs `fn` now, turning what it throws into a rejection, as an async port method must. */
const attempt = <T>(fn: () => T): Promise<T> => new Promise((resolve) => resolve(fn()));

function resolveQueueOptions(options: MemoryQueueOptions, path: string): Required<MemoryQueueOptions> {
  const lockDurationInMs = options.lockDurationInMs ?? DEFAULT_LOCK_DURATION_IN_MS;
  const maxDeliveryCount = options.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY_COUNT;
  if (!(lockDurationInMs > 0) || !Number.isFinite(lockDurationInMs)) {
    throw new RangeError(`${path}.lockDurationInMs must be a positive number, got ${lockDurationInMs}`);
  }
  if (!Number.isInteger(maxDeliveryCount) || maxDeliveryCount < 1) {
    throw new RangeError(`${path}.maxDeliveryCount must be a positive integer, got ${maxDeliveryCount}`);
  }
  return { lockDurationInMs, maxDeliveryCount };
}

interface StoredMessage {
  readonly id: string;
  /** A private copy: handed out only as further copies. */
  readonly body: unknown;
  deliveryCount: number;
  enqueuedAt: number;
}

const newMessage = (body: unknown, messageId: string | undefined): StoredMessage => ({
  id: messageId ?? randomUUID(),
  body: structuredClone(body),
  deliveryCount: 0,
  enqueuedAt: Date.now(),
});

interface DeadLetter {
  readonly message: StoredMessage;
  readonly reason: string;
  readonly description: string;
}

interface Consumer {
  readonly handler: MessageHandler<unknown>;
  readonly concurrency: number;
  readonly maxAutoLockRenewalDurationInMs: number;
  /** Handlers running, including those whose lock was lost: they still hold their slot. */
  running: number;
  closed: boolean;
  /** Resolvers of `close()` calls waiting for `running` to reach 0. */
  readonly idleWaiters: (() => void)[];
}

interface Delivery {
  readonly message: StoredMessage;
  readonly consumer: Consumer;
  readonly receivedAt: number;
  readonly controller: AbortController;
  lockTimer: NodeJS.Timeout | undefined;
  lost: boolean;
}

class MemoryQueue {
  private readonly lockDurationInMs: number;
  private readonly maxDeliveryCount: number;
  private readonly ready = new Deque<StoredMessage>();
  private readonly scheduled = new ScheduleHeap();
  private scheduleTimer: NodeJS.Timeout | undefined;
  private scheduleTimerDueAt = Infinity;
  private readonly locked = new Set<Delivery>();
  private readonly deadLetters: DeadLetter[] = [];
  private readonly consumers: Consumer[] = [];
  private cursor = 0;

  constructor(options: Required<MemoryQueueOptions>) {
    this.lockDurationInMs = options.lockDurationInMs;
    this.maxDeliveryCount = options.maxDeliveryCount;
  }

  enqueue(message: StoredMessage, delayInMs: number): void {
    if (delayInMs > 0) {
      this.scheduled.push(message, message.enqueuedAt + delayInMs);
      this.armScheduleTimer();
    } else {
      this.ready.pushBack(message);
    }
  }

  /** Hands ready messages to consumers with a free slot, round robin. Call after any change. */
  dispatch(): void {
    while (this.ready.length > 0) {
      const consumer = this.nextConsumerWithCapacity();
      if (!consumer) return;
      const message = this.ready.shift();
      if (message) this.deliver(consumer, message);
    }
  }

  addConsumer(handler: MessageHandler<unknown>, concurrency: number, maxAutoLockRenewalDurationInMs: number): Consumer {
    const consumer: Consumer = {
      handler,
      concurrency,
      maxAutoLockRenewalDurationInMs,
      running: 0,
      closed: false,
      idleWaiters: [],
    };
    this.consumers.push(consumer);
    this.dispatch();
    return consumer;
  }

  async removeConsumer(consumer: Consumer): Promise<void> {
    if (!consumer.closed) {
      consumer.closed = true;
      const at = this.consumers.indexOf(consumer);
      if (at >= 0) this.consumers.splice(at, 1);
    }
    if (consumer.running === 0) return;
    await new Promise<void>((resolve) => consumer.idleWaiters.push(resolve));
  }

  depth(): QueueDepth {
    return {
      active: this.ready.length + this.locked.size,
      scheduled: this.scheduled.size,
      deadLetter: this.deadLetters.length,
    };
  }

  peekDeadLetters(maxCount: number): DeadLetteredMessage<unknown>[] {
    return this.deadLetters.slice(0, Math.max(0, maxCount)).map(({ message, reason, description }) => ({
      id: message.id,
      body: structuredClone(message.body),
      deliveryCount: message.deliveryCount,
      reason,
      description,
    }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => this.removeConsumer(consumer)));
    clearTimeout(this.scheduleTimer);
    this.scheduleTimer = undefined;
    this.scheduleTimerDueAt = Infinity;
  }

  private nextConsumerWithCapacity(): Consumer | undefined {
    const count = this.consumers.length;
    for (let i = 0; i < count; i++) {
      const at = (this.cursor + i) % count;
      const consumer = this.consumers[at];
      if (consumer && consumer.running < consumer.concurrency) {
        this.cursor = (at + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  private deliver(consumer: Consumer, message: StoredMessage): void {
    message.deliveryCount++;
    consumer.running++;
    const delivery: Delivery = {
      message,
      consumer,
      receivedAt: Date.now(),
      controller: new AbortController(),
      lockTimer: undefined,
      lost: false,
    };
    this.locked.add(delivery);
    this.armLockTimer(delivery);
    void this.run(delivery);
  }

  private async run(delivery: Delivery): Promise<void> {
    const { message, consumer } = delivery;
    let failure: { error: unknown } | undefined;
    try {
      // Yield first, so that no handler code runs inside send() or consume().
      await Promise.resolve();
      await consumer.handler(
        {
          id: message.id,
          body: structuredClone(message.body),
          deliveryCount: message.deliveryCount,
          enqueuedAt: new Date(message.enqueuedAt),
        },
        delivery.controller.signal,
      );
    } catch (error) {
      failure = { error };
    }
    consumer.running--;
    // A delivery whose lock expired was already put back: its outcome is void.
    if (!delivery.lost) {
      clearTimeout(delivery.lockTimer);
      this.locked.delete(delivery);
      if (failure) this.settleFailure(message, failure.error);
    }
    if (consumer.closed && consumer.running === 0) {
      for (const resolve of consumer.idleWaiters.splice(0)) resolve();
    }
    this.dispatch();
  }

  private settleFailure(message: StoredMessage, error: unknown): void {
    if (isOrchestratorError(error) && !error.retryable) {
      this.deadLetters.push({ message, reason: error.code, description: error.message });
    } else {
      this.abandon(message, describeError(error));
    }
  }

  /** Back to the front of the queue, or to the dead letters once it has had all its deliveries. */
  private abandon(message: StoredMessage, description: string): void {
    if (message.deliveryCount >= this.maxDeliveryCount) {
      this.deadLetters.push({ message, reason: 'MaxDeliveryCountExceeded', description });
    } else {
      this.ready.pushFront(message);
    }
  }

  /**
   * Like the Service Bus SDK, renews the lock just before it expires for as long as the renewal
   * window since receipt lasts; once the window is over, the next expiry loses the lock.
   */
  private armLockTimer(delivery: Delivery): void {
    delivery.lockTimer = setTimeout(() => {
      const { consumer } = delivery;
      const renewUntil = delivery.receivedAt + consumer.maxAutoLockRenewalDurationInMs;
      if (consumer.maxAutoLockRenewalDurationInMs > 0 && Date.now() < renewUntil) {
        this.armLockTimer(delivery);
      } else {
        this.loseLock(delivery);
      }
    }, this.lockDurationInMs);
    delivery.lockTimer.unref();
  }

  private loseLock(delivery: Delivery): void {
    const { message } = delivery;
    delivery.lost = true;
    delivery.lockTimer = undefined;
    this.locked.delete(delivery);
    this.abandon(message, `the lock of message ${message.id} expired before the handler settled`);
    delivery.controller.abort(
      new OrchestratorError('LOCK_LOST', `the lock of message ${message.id} expired`, { retryable: true }),
    );
    this.dispatch();
  }

  private armScheduleTimer(): void {
    const dueAt = this.scheduled.peekDueAt();
    if (dueAt === undefined || dueAt >= this.scheduleTimerDueAt) return;
    clearTimeout(this.scheduleTimer);
    this.scheduleTimerDueAt = dueAt;
    this.scheduleTimer = setTimeout(() => this.activateDue(), Math.max(0, dueAt - Date.now()));
    this.scheduleTimer.unref();
  }

  private activateDue(): void {
    this.scheduleTimer = undefined;
    this.scheduleTimerDueAt = Infinity;
    const now = Date.now();
    for (
      let dueAt = this.scheduled.peekDueAt();
      dueAt !== undefined && dueAt <= now;
      dueAt = this.scheduled.peekDueAt()
    ) {
      const message = this.scheduled.pop();
      if (!message) break;
      message.enqueuedAt = now;
      this.ready.pushBack(message);
    }
    this.armScheduleTimer();
    this.dispatch();
  }
}

/** A growable ring buffer: O(1) at both ends, without the copying of `Array.prototype.shift`. */
class Deque<T> {
  private items: (T | undefined)[] = new Array<T | undefined>(16);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  pushBack(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) % this.items.length] = item;
    this.count++;
  }

  pushFront(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.head = (this.head - 1 + this.items.length) % this.items.length;
    this.items[this.head] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    return item;
  }

  private grow(): void {
    const grown = new Array<T | undefined>(this.items.length * 2);
    for (let i = 0; i < this.count; i++) grown[i] = this.items[(this.head + i) % this.items.length];
    this.items = grown;
    this.head = 0;
  }
}

interface ScheduledEntry {
  readonly dueAt: number;
  /** Breaks ties, so messages due at the same time activate in the order they were sent. */
  readonly sequence: number;
  readonly message: StoredMessage;
}

/** A binary min-heap of scheduled messages by due time. */
class ScheduleHeap {
  private readonly entries: ScheduledEntry[] = [];
  private sequence = 0;

  get size(): number {
    return this.entries.length;
  }

  peekDueAt(): number | undefined {
    return this.entries[0]?.dueAt;
  }

  push(message: StoredMessage, dueAt: number): void {
    const entries = this.entries;
    entries.push({ dueAt, sequence: this.sequence++, message });
    let at = entries.length - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!this.less(at, parent)) break;
      this.swap(at, parent);
      at = parent;
    }
  }

  pop(): StoredMessage | undefined {
    const entries = this.entries;
    const top = entries[0];
    const last = entries.pop();
    if (top === undefined || last === undefined) return undefined;
    if (entries.length > 0) {
      entries[0] = last;
      let at = 0;
      for (;;) {
        const left = 2 * at + 1;
        const right = left + 1;
        let smallest = at;
        if (left < entries.length && this.less(left, smallest)) smallest = left;
        if (right < entries.length && this.less(right, smallest)) smallest = right;
        if (smallest === at) break;
        this.swap(at, smallest);
        at = smallest;
      }
    }
    return top.message;
  }

  private less(a: number, b: number): boolean {
    const x = this.entries[a];
    const y = this.entries[b];
    if (!x || !y) return false;
    return x.dueAt < y.dueAt || (x.dueAt === y.dueAt && x.sequence < y.sequence);
  }

  private swap(a: number, b: number): void {
    const x = this.entries[a];
    const y = this.entries[b];
    if (!x || !y) return;
    this.entries[a] = y;
    this.entries[b] = x;
  }
}
