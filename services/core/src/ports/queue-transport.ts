/**
 * Moves messages between services, at-least-once, so handlers must be idempotent.
 *
 * The handler's outcome decides settlement: resolve ⇒ complete; throw an `OrchestratorError` with
 * `retryable: false` ⇒ dead-letter now (reason = its code, description = its message); throw anything
 * else ⇒ abandon, so the message is redelivered with its delivery count increased, until the queue's
 * `maxDeliveryCount` is reached and it is dead-lettered. A message whose lock expires (its consumer
 * died or hung) is redelivered the same way. Adapters own their connections; no AMQP or Service Bus
 * types cross this interface.
 */
export interface QueueTransport {
  /** Human name of the adapter, for logs and readiness. */
  readonly kind: string;
  /**
   * Whether accepted messages survive a restart of this process. The in-process transport is not
   * durable: after a restart the job store (the source of truth) re-dispatches what was queued.
   */
  readonly durable: boolean;
  send<T>(queue: string, body: T, options?: SendOptions): Promise<void>;
  /** Sends many messages to one queue with as few round trips as the transport allows. */
  sendBatch<T>(
    queue: string,
    messages: readonly OutgoingMessage<T>[],
    options?: { abortSignal?: AbortSignal },
  ): Promise<void>;
  consume<T>(queue: string, handler: MessageHandler<T>, options?: ConsumeOptions): Promise<Subscription>;
  /** Message counts of a queue: ready to deliver (incl. locked), scheduled for later, dead-lettered. */
  getQueueDepth(queue: string): Promise<QueueDepth>;
  /** Dead-lettered messages of a queue, oldest first, without removing them. */
  peekDeadLetters<T>(queue: string, options?: { maxCount?: number }): Promise<DeadLetteredMessage<T>[]>;
  close(): Promise<void>;
}

export interface SendOptions {
  /** Deliver no earlier than this many ms from now (a scheduled message). @default 0 */
  delayInMs?: number;
  /** Identifies the message in logs and, where the broker supports it, for duplicate detection. */
  messageId?: string;
  abortSignal?: AbortSignal;
}

export interface OutgoingMessage<T> {
  body: T;
  delayInMs?: number;
  messageId?: string;
}

export interface ReceivedMessage<T> {
  id: string;
  body: T;
  /** 1 on the first delivery. */
  deliveryCount: number;
  enqueuedAt: Date;
}

/** `signal` aborts when the message's lock is lost: the handler should stop, its outcome is void. */
export type MessageHandler<T> = (message: ReceivedMessage<T>, signal: AbortSignal) => Promise<void>;

export interface ConsumeOptions {
  /** Messages handled at once. @default 1 */
  concurrency?: number;
  /** How long the lock is renewed for while a handler runs, as the Service Bus SDK does. @default 300000 */
  maxAutoLockRenewalDurationInMs?: number;
}

export interface Subscription {
  /** Stops receiving and waits for in-flight handlers to settle. */
  close(): Promise<void>;
}

export interface QueueDepth {
  /** Waiting or being handled (locked). What KEDA scales on. */
  active: number;
  /** Accepted for delivery later. */
  scheduled: number;
  deadLetter: number;
}

export interface DeadLetteredMessage<T> {
  id: string;
  body: T;
  deliveryCount: number;
  reason: string;
  description: string;
}
