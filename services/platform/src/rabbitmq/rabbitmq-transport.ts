import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import { connect } from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, Message, MessagePropertyHeaders, Options } from 'amqplib';
import type { Logger } from 'pino';
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
import { createSharedReads } from '../shared/shared-reads.ts';
import {
  DEFAULT_DEPTH_CACHE_TTL_IN_MS,
  DEFAULT_LOCK_DURATION_IN_MS,
  DEFAULT_MAX_AUTO_LOCK_RENEWAL_DURATION_IN_MS,
  DEFAULT_MAX_DELIVERY_COUNT,
  DEFAULT_PEEK_MAX_COUNT,
} from '../shared/transport-defaults.ts';

/** Settings of {@link createRabbitMqTransport}. */
export interface RabbitMqTransportOptions {
  /**
   * AMQP URL of the broker, with credentials and virtual host: `amqp://user:password@host:5672/vhost`
   * (no path means the vhost `/`). Query parameters such as `heartbeat=10` go to amqplib.
   */
  url: string;
  /**
   * Base URL of the RabbitMQ management HTTP API, used to find delay queues other processes created
   * and the unacknowledged messages of consumers in other processes (see `getQueueDepth`).
   * Credentials in it win over those of `url`.
   * @default `url`'s host on port 15672 over http (15671 over https for `amqps:`), same credentials
   */
  managementUrl?: string;
  /**
   * How long an answer of the management API (the delay queues of a queue, the consumers and channels
   * of the virtual host) is reused by `getQueueDepth` before it is asked again; concurrent reads always
   * share the request in flight. The broker's own counts (ready, scheduled and dead-lettered messages,
   * and what this instance holds) are read on every call: only what lags anyway is cached.
   * @default 5000
   */
  depthCacheTtlInMs?: number;
  /**
   * How long a delivery stays "locked" without renewal. RabbitMQ has no lock: the transport emulates
   * the Service Bus one (see `consume`).
   * @default 60000
   */
  lockDurationInMs?: number;
  /**
   * Deliveries after which a message that is still abandoned is dead-lettered. Set on the queues as
   * `x-delivery-limit` = maxDeliveryCount - 1: declaring an existing queue with another value fails
   * with `CONFIG_INVALID`.
   * @default 10
   */
  maxDeliveryCount?: number;
  /** Receives connection loss and recovery (warn/info) and diagnostics (debug). */
  logger?: Logger;
  /** First delay before reconnecting after the connection drops; doubles per failed attempt. @default 100 */
  reconnectInitialDelayInMs?: number;
  /** Upper bound of the reconnect delay. @default 30000 */
  reconnectMaxDelayInMs?: number;
  /**
   * How long `send` and `sendBatch` wait for a connection (and for the broker's confirms) during an
   * outage before rejecting with a retryable `DEPENDENCY_UNAVAILABLE`. `consume`, `getQueueDepth` and
   * `peekDeadLetters` wait as long for a connection.
   * @default 30000
   */
  sendTimeoutInMs?: number;
  /** Shown as the connection's name in the management UI. @default 'orch' */
  connectionName?: string;
}

const DEFAULT_RECONNECT_INITIAL_DELAY_IN_MS = 100;
const DEFAULT_RECONNECT_MAX_DELAY_IN_MS = 30_000;
const DEFAULT_SEND_TIMEOUT_IN_MS = 30_000;
const MANAGEMENT_TIMEOUT_IN_MS = 5_000;
/** A TCP connect or AMQP handshake that takes longer than this is given up and retried. */
const CONNECT_TIMEOUT_IN_MS = 10_000;
const MANAGEMENT_WARNING_INTERVAL_IN_MS = 60_000;
/** AMQP's prefetch count is an unsigned 16-bit number. */
const MAX_CONCURRENCY = 65_535;

/** Delay buckets are powers of two ms, from 2^10 (~1 s) to 2^31 (~24.8 days). */
const MIN_BUCKET_EXPONENT = 10;
const MAX_BUCKET_EXPONENT = 31;
/** The longest delay a message can be sent with. */
const MAX_DELAY_IN_MS = 2 ** MAX_BUCKET_EXPONENT;
/**
 * A delay queue is deleted by the broker once it has gone this long past its TTL without being
 * declared (publishing does not count as use), so buckets nobody sends to disappear on their own.
 */
const BUCKET_IDLE_EXPIRY_IN_MS = 30 * 60_000;
/** Re-declare a bucket before publishing when the last declaration is older than this: it must outlive the message. */
const BUCKET_REDECLARE_AFTER_IN_MS = 10 * 60_000;

const HEADER_DEAD_LETTER_REASON = 'x-orch-dead-letter-reason';
const HEADER_DEAD_LETTER_DESCRIPTION = 'x-orch-dead-letter-description';
const HEADER_DELIVERY_COUNT = 'x-orch-delivery-count';
/** Keeps the headers of a dead letter well under amqplib's 64 KiB header table. */
const MAX_DESCRIPTION_LENGTH = 4_096;
/** What the memory and Service Bus transports call a message that ran out of deliveries. */
const MAX_DELIVERY_COUNT_EXCEEDED = 'MaxDeliveryCountExceeded';

/**
 * A {@link QueueTransport} over RabbitMQ (3.10 or later) with the semantics of the memory and
 * Service Bus transports.
 *
 * Topology, declared on first use of a queue `q` and again after every reconnection:
 * - `q`: a quorum queue with `x-delivery-limit` = maxDeliveryCount - 1 (RabbitMQ counts
 *   redeliveries: a limit of L allows L + 1 deliveries) that dead-letters at least once to `q.dlq`.
 * - `q.dlq`: a durable classic queue of dead letters. A handler's non-retryable error and the last
 *   failed delivery are republished there by the transport (with reason and description headers)
 *   and then acknowledged; the broker's own dead-lettering past the limit (consumers that died or
 *   lost their connection) reads as reason `MaxDeliveryCountExceeded`.
 * - `q.delay.<2^k>`: classic delay queues with `x-message-ttl` 2^k ms that dead-letter into `q`.
 *   A delayed message goes to the smallest bucket not shorter than its delay, with its exact delay as
 *   per-message expiration: it is never delivered early, and at most the bucket's TTL late (when a
 *   message with a longer delay in the same bucket is ahead of it). Unused buckets expire.
 *
 * Sends use publisher confirms, pipelined per batch, and respect the channel's backpressure; a
 * publish whose confirm was lost with the connection is published again after reconnection (at
 * least once: duplicates are possible, losses are not). Messages are persistent JSON with a
 * `messageId` (a random UUID unless given) and a timestamp (seconds, as AMQP defines it).
 *
 * Each `consume` has a channel of its own with prefetch = concurrency. RabbitMQ has no lock, so the
 * Service Bus one is emulated with timers: a handler still running once
 * `maxAutoLockRenewalDurationInMs` has passed loses its lock at the next `lockDurationInMs` expiry;
 * its signal aborts with `LOCK_LOST` and the message is requeued (or dead-lettered on its last
 * delivery), exactly as the memory transport does. The transport reconnects with exponential
 * backoff and jitter, re-declares queues and restarts every live consumer; handlers running when the
 * connection drops have their signal aborted too (the broker redelivers their message, counting it
 * as a delivery).
 *
 * Depth: `active` = ready messages (`queue.declare` passive: exact and immediate) + deliveries this
 * instance holds unsettled (exact) + messages held by consumers of other processes, read from the
 * management API only when the broker reports more consumers than this instance has (that number
 * lags by a few seconds). `scheduled` = messages in the delay buckets (those this instance used plus
 * those the management API lists), `deadLetter` = messages in `q.dlq`. Management API answers are
 * shared by concurrent reads and reused for `depthCacheTtlInMs`. Without the management API the
 * depth counts only what this process sees (logged once a minute).
 *
 * `peekDeadLetters` takes dead letters with `basic.get` and puts them all back (a classic queue
 * requeues them in place); peeks of one instance run one at a time, and a consumer of `q.dlq`
 * elsewhere would see the peeked messages as redelivered.
 *
 * After {@link QueueTransport.close} every operation rejects with a retryable
 * `DEPENDENCY_UNAVAILABLE` (unlike the memory transport, depth and dead-letter reads need the broker).
 *
 * @throws RangeError when an option is out of range or a URL cannot be parsed.
 */
export function createRabbitMqTransport(options: RabbitMqTransportOptions): QueueTransport {
  return new RabbitMqTransport(resolveOptions(options));
}

interface ResolvedOptions {
  readonly url: string;
  readonly host: string;
  readonly vhost: string;
  readonly management: { readonly baseUrl: string; readonly authorization: string | undefined };
  readonly depthCacheTtlInMs: number;
  readonly lockDurationInMs: number;
  readonly maxDeliveryCount: number;
  readonly logger: Logger | undefined;
  readonly reconnectInitialDelayInMs: number;
  readonly reconnectMaxDelayInMs: number;
  readonly sendTimeoutInMs: number;
  readonly connectionName: string;
}

function resolveOptions(options: RabbitMqTransportOptions): ResolvedOptions {
  const url = parseUrl(options.url, 'options.url', ['amqp:', 'amqps:']);
  const lockDurationInMs = options.lockDurationInMs ?? DEFAULT_LOCK_DURATION_IN_MS;
  const maxDeliveryCount = options.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY_COUNT;
  const reconnectInitialDelayInMs = options.reconnectInitialDelayInMs ?? DEFAULT_RECONNECT_INITIAL_DELAY_IN_MS;
  const reconnectMaxDelayInMs = options.reconnectMaxDelayInMs ?? DEFAULT_RECONNECT_MAX_DELAY_IN_MS;
  const sendTimeoutInMs = options.sendTimeoutInMs ?? DEFAULT_SEND_TIMEOUT_IN_MS;
  const depthCacheTtlInMs = options.depthCacheTtlInMs ?? DEFAULT_DEPTH_CACHE_TTL_IN_MS;
  if (!(depthCacheTtlInMs >= 0)) {
    throw new RangeError(`options.depthCacheTtlInMs must not be negative, got ${depthCacheTtlInMs}`);
  }
  requirePositive(lockDurationInMs, 'options.lockDurationInMs');
  requirePositive(reconnectInitialDelayInMs, 'options.reconnectInitialDelayInMs');
  requirePositive(reconnectMaxDelayInMs, 'options.reconnectMaxDelayInMs');
  requirePositive(sendTimeoutInMs, 'options.sendTimeoutInMs');
  if (!Number.isInteger(maxDeliveryCount) || maxDeliveryCount < 1) {
    throw new RangeError(`options.maxDeliveryCount must be a positive integer, got ${maxDeliveryCount}`);
  }
  if (reconnectMaxDelayInMs < reconnectInitialDelayInMs) {
    throw new RangeError(
      `options.reconnectMaxDelayInMs (${reconnectMaxDelayInMs}) must not be less than options.reconnectInitialDelayInMs (${reconnectInitialDelayInMs})`,
    );
  }
  // As amqplib reads it: no path or an empty one is the default vhost.
  const vhostPath = url.pathname.slice(1);
  const vhost = vhostPath ? decodeURIComponent(vhostPath) : '/';

  let management: URL;
  if (options.managementUrl === undefined) {
    management = new URL(url.protocol === 'amqps:' ? 'https://localhost:15671' : 'http://localhost:15672');
    management.hostname = url.hostname;
  } else {
    management = parseUrl(options.managementUrl, 'options.managementUrl', ['http:', 'https:']);
  }
  // fetch refuses URLs with credentials: send them as a header instead.
  const username = decodeURIComponent(management.username || url.username);
  const password = decodeURIComponent(management.password || url.password);
  const authorization =
    username || password ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` : undefined;
  const baseUrl = `${management.origin}${management.pathname.replace(/\/+$/, '')}`;

  return {
    url: options.url,
    host: url.host,
    vhost,
    management: { baseUrl, authorization },
    depthCacheTtlInMs,
    lockDurationInMs,
    maxDeliveryCount,
    logger: options.logger,
    reconnectInitialDelayInMs,
    reconnectMaxDelayInMs,
    sendTimeoutInMs,
    connectionName: options.connectionName ?? 'orch',
  };
}

function parseUrl(value: string, path: string, protocols: readonly string[]): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(`${path} is not a valid URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new RangeError(`${path} must start with ${protocols.join(' or ')}, got ${url.protocol}`);
  }
  return url;
}

function requirePositive(value: number, path: string): void {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${path} must be a positive number, got ${value}`);
}

/** One AMQP connection and what was declared on it; replaced as a whole when it drops. */
interface Link {
  readonly id: number;
  readonly model: ChannelModel;
  open: boolean;
  publisher: Promise<ConfirmChannel> | undefined;
  /** Why the last publisher channel was closed by the broker, if it was. */
  publisherError: Error | undefined;
  /** Queue declarations done (or in progress) on this connection, by queue name. */
  readonly declared: Map<string, { readonly promise: Promise<void>; readonly at: number }>;
}

/** A message ready to publish. */
interface Outgoing {
  readonly delayInMs: number;
  readonly content: Buffer;
  readonly properties: Options.Publish;
}

type ConfirmOutcome = 'confirmed' | 'lost' | 'refused';

class RabbitMqTransport implements QueueTransport {
  readonly kind = 'rabbitmq';
  readonly durable = true;

  readonly options: ResolvedOptions;
  readonly logger: Logger | undefined;
  /** Consumer tags of this instance start with it: how depth tells its own consumers from others. */
  readonly consumerTagPrefix = `orch.${randomUUID()}`;

  private link: Link | undefined;
  private linkCount = 0;
  private connectAttempts = 0;
  private connectTimer: NodeJS.Timeout | undefined;
  private lastConnectError: unknown;
  private wasConnected = false;
  /** Woken whenever `link` changes or the transport closes. */
  private readonly linkWaiters = new Set<() => void>();
  private closed = false;
  private closing: Promise<void> | undefined;

  private readonly consumers = new Set<Consumer>();
  /** Sends, reads and dead-letter peeks in progress: close waits for them. */
  private readonly operations = new Set<Promise<unknown>>();
  /** Delay buckets this instance has published to, by target queue. */
  private readonly knownBuckets = new Map<string, Set<number>>();
  /** Peeks run one at a time: each takes the dead letters out and puts them back. */
  private peeking: Promise<unknown> = Promise.resolve();
  private lastManagementWarningAt = 0;
  /** Management API answers by path: the request in flight, then its answer for `depthCacheTtlInMs`. */
  private readonly readManagement: (path: string, read: () => Promise<unknown>) => Promise<unknown>;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.logger = options.logger;
    // A failed read answers undefined (see fetchManagement): not reused.
    this.readManagement = createSharedReads({ ttlInMs: options.depthCacheTtlInMs, keep: (v) => v !== undefined });
    void this.connectOnce();
  }

  send<T>(queue: string, body: T, sendOptions: SendOptions = {}): Promise<void> {
    return this.sendBatch(queue, [{ body, delayInMs: sendOptions.delayInMs, messageId: sendOptions.messageId }], {
      abortSignal: sendOptions.abortSignal,
    });
  }

  sendBatch<T>(
    queue: string,
    messages: readonly OutgoingMessage<T>[],
    batchOptions: { abortSignal?: AbortSignal } = {},
  ): Promise<void> {
    return this.track(`cannot send to queue ${queue}`, batchOptions.abortSignal, async () => {
      this.assertOpen();
      batchOptions.abortSignal?.throwIfAborted();
      validateQueueName(queue);
      // Encode every message before publishing any, so one bad body rejects the whole batch.
      const outgoing = messages.map((m) => prepare(m));
      if (outgoing.length > 0) await this.publish(queue, outgoing, batchOptions.abortSignal);
    });
  }

  async consume<T>(
    queue: string,
    handler: MessageHandler<T>,
    consumeOptions: ConsumeOptions = {},
  ): Promise<Subscription> {
    this.assertOpen();
    validateQueueName(queue);
    const concurrency = consumeOptions.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RangeError(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got ${concurrency}`);
    }
    const maxRenewal = consumeOptions.maxAutoLockRenewalDurationInMs ?? DEFAULT_MAX_AUTO_LOCK_RENEWAL_DURATION_IN_MS;
    if (!(maxRenewal >= 0)) {
      throw new RangeError(`maxAutoLockRenewalDurationInMs must not be negative, got ${maxRenewal}`);
    }
    const consumer = new Consumer(this, queue, handler as MessageHandler<unknown>, concurrency, maxRenewal);
    this.consumers.add(consumer);
    try {
      const link = await this.acquire(Date.now() + this.options.sendTimeoutInMs);
      await consumer.start(link);
    } catch (error) {
      await consumer.close();
      throw translateError(error, `cannot consume from queue ${queue}`);
    }
    return { close: () => consumer.close() };
  }

  getQueueDepth(queue: string): Promise<QueueDepth> {
    return this.track(`cannot read the depth of queue ${queue}`, undefined, async () => {
      this.assertOpen();
      validateQueueName(queue);
      const link = await this.acquire(Date.now() + this.options.sendTimeoutInMs);
      const buckets = await this.bucketQueuesOf(queue);
      const stats = await this.inspectQueues(link, [
        queue,
        dlqOf(queue),
        ...buckets.map((b) => bucketQueueOf(queue, b)),
      ]);
      const main = stats.get(queue);
      let scheduled = 0;
      for (const bucket of buckets) {
        const bucketStats = stats.get(bucketQueueOf(queue, bucket));
        if (bucketStats) scheduled += bucketStats.messageCount;
        else this.knownBuckets.get(queue)?.delete(bucket); // expired
      }
      // Ready messages are exact from the broker; those handed to consumers ("unacked") are exact for
      // this instance's consumers and, from the lagging management API, for anyone else's.
      let held = 0;
      let ownConsumers = 0;
      for (const consumer of this.consumers) {
        if (consumer.queue !== queue) continue;
        held += consumer.heldCount;
        if (consumer.registered) ownConsumers++;
      }
      const foreign = main && main.consumerCount > ownConsumers ? await this.foreignUnacknowledged(queue) : 0;
      return {
        active: (main?.messageCount ?? 0) + held + foreign,
        scheduled,
        deadLetter: stats.get(dlqOf(queue))?.messageCount ?? 0,
      };
    });
  }

  peekDeadLetters<T>(queue: string, peekOptions: { maxCount?: number } = {}): Promise<DeadLetteredMessage<T>[]> {
    return this.track(`cannot peek the dead letters of queue ${queue}`, undefined, async () => {
      this.assertOpen();
      validateQueueName(queue);
      const maxCount = Math.floor(peekOptions.maxCount ?? DEFAULT_PEEK_MAX_COUNT);
      if (!(maxCount > 0)) return [];
      const peek = this.peeking.then(() => this.peek(queue, maxCount));
      this.peeking = peek.catch(() => undefined);
      return (await peek) as DeadLetteredMessage<T>[];
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- connection ------------------------------------------------------------------------------

  /** The open connection, waiting for one until `deadline`. */
  async acquire(deadline: number, signal?: AbortSignal): Promise<Link> {
    for (;;) {
      this.assertOpen();
      signal?.throwIfAborted();
      if (this.link?.open) return this.link;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new OrchestratorError(
          'DEPENDENCY_UNAVAILABLE',
          `RabbitMQ at ${this.options.host} is unreachable` +
            (this.lastConnectError === undefined ? '' : `: ${describeError(this.lastConnectError)}`),
          { retryable: true, cause: this.lastConnectError },
        );
      }
      await this.linkChange(remaining, signal);
    }
  }

  /** The current connection if it is open, without waiting. */
  currentLink(): Link | undefined {
    return this.link?.open ? this.link : undefined;
  }

  private linkChange(timeoutInMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.linkWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutInMs);
      this.linkWaiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private wakeLinkWaiters(): void {
    for (const wake of [...this.linkWaiters]) wake();
  }

  private async connectOnce(): Promise<void> {
    this.connectTimer = undefined;
    if (this.closed) return;
    let model: ChannelModel;
    try {
      model = await connect(this.options.url, {
        clientProperties: { connection_name: this.options.connectionName },
        timeout: CONNECT_TIMEOUT_IN_MS,
      });
    } catch (error) {
      this.lastConnectError = error;
      const delay = this.scheduleConnect();
      const log = { err: error, host: this.options.host, attempt: this.connectAttempts, retryInMs: Math.round(delay) };
      if (this.connectAttempts === 1) this.logger?.warn(log, 'cannot connect to RabbitMQ; retrying');
      else this.logger?.debug(log, 'cannot connect to RabbitMQ; retrying');
      return;
    }
    if (this.closed) {
      await model.close().catch(() => undefined);
      return;
    }
    coalesceWrites(model);
    const link: Link = {
      id: ++this.linkCount,
      model,
      open: true,
      publisher: undefined,
      publisherError: undefined,
      declared: new Map(),
    };
    model.on('error', (error: Error) => this.logger?.debug({ err: error }, 'RabbitMQ connection error'));
    model.on('close', (error?: Error) => this.onLinkClosed(link, error));
    model.on('blocked', (reason: string) => this.logger?.warn({ reason }, 'RabbitMQ blocked publishing'));
    model.on('unblocked', () => this.logger?.info('RabbitMQ unblocked publishing'));
    this.link = link;
    this.connectAttempts = 0;
    this.lastConnectError = undefined;
    this.logger?.info(
      { host: this.options.host, vhost: this.options.vhost },
      this.wasConnected ? 'RabbitMQ connection restored' : 'connected to RabbitMQ',
    );
    this.wasConnected = true;
    this.wakeLinkWaiters();
    for (const consumer of this.consumers) consumer.restartOn(link);
  }

  private onLinkClosed(link: Link, error: Error | undefined): void {
    if (!link.open) return;
    link.open = false;
    if (this.link === link) this.link = undefined;
    this.wakeLinkWaiters();
    if (this.closed) return;
    this.lastConnectError = error;
    this.logger?.warn({ err: error, host: this.options.host }, 'RabbitMQ connection lost; reconnecting');
    this.scheduleConnect();
  }

  /** Exponential backoff with jitter: half the delay fixed, half random. Returns the delay. */
  private scheduleConnect(): number {
    const delay = backoffDelay(
      this.connectAttempts++,
      this.options.reconnectInitialDelayInMs,
      this.options.reconnectMaxDelayInMs,
    );
    if (!this.closed) this.connectTimer = setTimeout(() => void this.connectOnce(), delay);
    return delay;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'the RabbitMQ transport is closed', { retryable: true });
    }
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.wakeLinkWaiters();
    await Promise.all([...this.consumers].map((consumer) => consumer.close()));
    await Promise.allSettled([...this.operations]);
    const link = this.link;
    this.link = undefined;
    if (link) {
      link.open = false;
      await link.model.close().catch(() => undefined);
    }
  }

  /**
   * Runs an operation, translating broker failures (but not the reason of the caller's abort
   * signal), and keeps it visible to `close`.
   */
  private track<T>(context: string, signal: AbortSignal | undefined, operation: () => Promise<T>): Promise<T> {
    const running = operation().catch((error: unknown) => {
      if (signal?.aborted && error === signal.reason) throw error;
      throw translateError(error, context);
    });
    this.operations.add(running);
    void running.finally(() => this.operations.delete(running)).catch(() => undefined);
    return running;
  }

  forgetConsumer(consumer: Consumer): void {
    this.consumers.delete(consumer);
  }

  // ---- topology --------------------------------------------------------------------------------

  /** Declares `queue` and its dead-letter queue on this connection, once. */
  ensureQueue(link: Link, queue: string): Promise<void> {
    return this.declareOnce(link, queue, Infinity, async (channel) => {
      await channel.assertQueue(dlqOf(queue), { durable: true });
      await channel.assertQueue(queue, {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          // RabbitMQ counts redeliveries: a limit of L lets a message be delivered L + 1 times.
          'x-delivery-limit': this.options.maxDeliveryCount - 1,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': dlqOf(queue),
          // Keep a message until the dead-letter queue confirms it; needs reject-publish overflow.
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        },
      });
    });
  }

  /** Declares a delay bucket of `queue`, again once the last declaration might let it expire. */
  private ensureBucket(link: Link, queue: string, bucketInMs: number): Promise<void> {
    return this.declareOnce(link, bucketQueueOf(queue, bucketInMs), BUCKET_REDECLARE_AFTER_IN_MS, async (channel) => {
      await channel.assertQueue(bucketQueueOf(queue, bucketInMs), {
        durable: true,
        arguments: {
          'x-message-ttl': bucketInMs,
          'x-expires': bucketInMs + BUCKET_IDLE_EXPIRY_IN_MS,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': queue,
        },
      });
    });
  }

  private declareOnce(
    link: Link,
    name: string,
    maxAgeInMs: number,
    declare: (channel: Channel) => Promise<void>,
  ): Promise<void> {
    const existing = link.declared.get(name);
    if (existing && Date.now() - existing.at < maxAgeInMs) return existing.promise;
    const promise = this.withChannel(link, declare);
    link.declared.set(name, { promise, at: Date.now() });
    promise.catch(() => {
      if (link.declared.get(name)?.promise === promise) link.declared.delete(name);
    });
    return promise;
  }

  /** Forgets that `queue` was declared, e.g. after the broker cancelled a consumer because it was deleted. */
  forgetQueue(link: Link, queue: string): void {
    link.declared.delete(queue);
  }

  /** Runs `use` on a short-lived channel (a failed declaration closes the channel it ran on). */
  private async withChannel<T>(link: Link, use: (channel: Channel) => Promise<T>): Promise<T> {
    const channel = await this.openChannel(link);
    try {
      return await use(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async openChannel(link: Link): Promise<Channel> {
    const channel = await link.model.createChannel();
    // Without a listener an 'error' event would throw; a closed channel is reported by its operations.
    channel.on('error', (error: Error) => this.logger?.debug({ err: error }, 'RabbitMQ channel closed by the broker'));
    return channel;
  }

  // ---- publishing ------------------------------------------------------------------------------

  /**
   * Publishes all messages, then waits for all confirms. Messages whose confirm was lost with the
   * channel are published again on the next one, until `sendTimeoutInMs` has passed.
   */
  private async publish(queue: string, messages: readonly Outgoing[], signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + this.options.sendTimeoutInMs;
    let pending = messages;
    while (pending.length > 0) {
      const link = await this.acquire(deadline, signal);
      try {
        await this.ensureQueue(link, queue);
        const routes = new Map<Outgoing, string>();
        for (const message of pending) {
          if (message.delayInMs === 0) {
            routes.set(message, queue);
          } else {
            const bucket = bucketFor(message.delayInMs);
            await this.ensureBucket(link, queue, bucket);
            this.rememberBucket(queue, bucket);
            routes.set(message, bucketQueueOf(queue, bucket));
          }
        }
        const channel = await this.publisherOf(link);
        const outcomes = await this.publishOn(
          channel,
          pending.map((message) => ({ routingKey: routes.get(message) ?? queue, message })),
          deadline,
        );
        if (outcomes.includes('refused')) {
          throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', `RabbitMQ refused messages sent to ${queue}`, {
            retryable: true,
          });
        }
        pending = pending.filter((_, i) => outcomes[i] === 'lost');
        // A broker that closes the channel on what we publish (e.g. a message over its size limit)
        // would do so again: give up rather than retrying until the deadline.
        if (pending.length > 0 && link.open && link.publisherError && !isTransient(link.publisherError)) {
          throw link.publisherError;
        }
        if (pending.length > 0) {
          this.logger?.debug({ queue, count: pending.length }, 'publishing again messages whose confirm was lost');
        }
      } catch (error) {
        if (!isTransient(error) || link.open) throw error;
        // The connection dropped under us: wait for the next one and try again.
      }
    }
  }

  private async publishOn(
    channel: ConfirmChannel,
    items: readonly { routingKey: string; message: Outgoing }[],
    deadline: number,
  ): Promise<ConfirmOutcome[]> {
    const confirms: Promise<ConfirmOutcome>[] = [];
    for (const { routingKey, message } of items) {
      let accepted = true;
      confirms.push(
        new Promise<ConfirmOutcome>((resolve, reject) => {
          try {
            accepted = channel.publish('', routingKey, message.content, message.properties, (error: unknown) =>
              resolve(error === null || error === undefined ? 'confirmed' : isNack(error) ? 'refused' : 'lost'),
            );
          } catch (error) {
            // A closed channel loses the message (publish it again on the next one); anything else
            // (amqplib refuses e.g. oversized headers) would fail again.
            if (!(error instanceof Error)) reject(new Error(describeError(error)));
            else if (error.name === 'IllegalOperationError') resolve('lost');
            else reject(error);
          }
        }),
      );
      // Respect the socket's backpressure rather than buffering a whole large batch in memory.
      if (!accepted && !(await this.drained(channel, deadline))) break;
    }
    const outcomes = await withDeadline(Promise.all(confirms), deadline);
    if (outcomes === undefined) {
      throw new OrchestratorError(
        'DEPENDENCY_UNAVAILABLE',
        `RabbitMQ did not confirm ${items.length} message(s) within ${this.options.sendTimeoutInMs} ms`,
        { retryable: true },
      );
    }
    // Messages after a break for a deadline were never published.
    return items.map((_, i) => outcomes[i] ?? 'lost');
  }

  /** Resolves true once the channel can take more, false if it closed or the deadline passed. */
  private drained(channel: ConfirmChannel, deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (result: boolean): void => {
        clearTimeout(timer);
        channel.off('drain', onDrain);
        channel.off('close', onClose);
        resolve(result);
      };
      const onDrain = (): void => finish(true);
      const onClose = (): void => finish(false);
      const timer = setTimeout(onClose, Math.max(0, deadline - Date.now()));
      channel.on('drain', onDrain);
      channel.on('close', onClose);
    });
  }

  private publisherOf(link: Link): Promise<ConfirmChannel> {
    if (link.publisher) return link.publisher;
    link.publisherError = undefined;
    const publisher = link.model.createConfirmChannel().then((channel) => {
      // Every concurrent send waiting for the socket to drain listens for 'drain' and 'close' until
      // it does: as many listeners as sends in flight, which is no leak.
      channel.setMaxListeners(0);
      channel.on('error', (error: Error) => {
        link.publisherError = error;
        this.logger?.warn({ err: error }, 'RabbitMQ publisher channel failed');
      });
      channel.on('close', () => {
        if (link.publisher === publisher) link.publisher = undefined;
      });
      return channel;
    });
    link.publisher = publisher;
    publisher.catch(() => {
      if (link.publisher === publisher) link.publisher = undefined;
    });
    return publisher;
  }

  /** Copies a delivery to the dead-letter queue with its reason, and waits for the broker's confirm. */
  async publishDeadLetter(
    link: Link,
    queue: string,
    message: Message,
    deadLetter: { reason: string; description: string; deliveryCount: number },
  ): Promise<void> {
    await this.ensureQueue(link, queue);
    const channel = await this.publisherOf(link);
    const { properties } = message;
    const [outcome] = await this.publishOn(
      channel,
      [
        {
          routingKey: dlqOf(queue),
          message: {
            delayInMs: 0,
            content: message.content,
            properties: {
              persistent: true,
              messageId: properties.messageId as string | undefined,
              timestamp: properties.timestamp as number | undefined,
              contentType: properties.contentType as string | undefined,
              correlationId: properties.correlationId as string | undefined,
              type: properties.type as string | undefined,
              appId: properties.appId as string | undefined,
              headers: {
                ...properties.headers,
                [HEADER_DEAD_LETTER_REASON]: deadLetter.reason,
                [HEADER_DEAD_LETTER_DESCRIPTION]: truncate(deadLetter.description, MAX_DESCRIPTION_LENGTH),
                [HEADER_DELIVERY_COUNT]: deadLetter.deliveryCount,
              },
            },
          },
        },
      ],
      Date.now() + this.options.sendTimeoutInMs,
    );
    if (outcome !== 'confirmed') {
      throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', `dead-lettering a message of ${queue} failed`, {
        retryable: true,
      });
    }
  }

  // ---- reading ---------------------------------------------------------------------------------

  private rememberBucket(queue: string, bucket: number): void {
    let buckets = this.knownBuckets.get(queue);
    if (!buckets) {
      buckets = new Set();
      this.knownBuckets.set(queue, buckets);
    }
    buckets.add(bucket);
  }

  /** Delay buckets of `queue`: those this instance used, and those the management API lists. */
  private async bucketQueuesOf(queue: string): Promise<number[]> {
    const buckets = new Set(this.knownBuckets.get(queue));
    const pattern = `^${escapeRegExp(queue)}\\.delay\\.\\d+$`;
    const listed = await this.management<{ items?: { name?: unknown }[] }>(
      `/api/queues/${encodeURIComponent(this.options.vhost)}?page=1&page_size=500&use_regex=true&columns=name&name=${encodeURIComponent(pattern)}`,
    );
    for (const item of listed?.items ?? []) {
      const bucket = typeof item.name === 'string' ? Number(item.name.slice(queue.length + '.delay.'.length)) : NaN;
      if (Number.isInteger(bucket) && bucket > 0) buckets.add(bucket);
    }
    return [...buckets].sort((a, b) => a - b);
  }

  /** `queue.declare(passive)` of each name: exact counts of ready messages; undefined when missing. */
  private async inspectQueues(
    link: Link,
    names: readonly string[],
  ): Promise<Map<string, { messageCount: number; consumerCount: number }>> {
    const stats = new Map<string, { messageCount: number; consumerCount: number }>();
    let channel: Channel | undefined;
    try {
      for (const name of names) {
        channel ??= await this.openChannel(link);
        try {
          const { messageCount, consumerCount } = await channel.checkQueue(name);
          stats.set(name, { messageCount, consumerCount });
        } catch (error) {
          if (amqpCodeOf(error) !== 404) throw error;
          channel = undefined; // the broker closed it
        }
      }
    } finally {
      await channel?.close().catch(() => undefined);
    }
    return stats;
  }

  /**
   * Messages of `queue` held unacknowledged by consumers of other processes, from the management
   * API: its numbers lag by a few seconds. 0 when it cannot be reached.
   */
  private async foreignUnacknowledged(queue: string): Promise<number> {
    const vhost = encodeURIComponent(this.options.vhost);
    const consumers = await this.management<
      { queue?: { name?: string }; consumer_tag?: string; channel_details?: { name?: string } }[]
    >(`/api/consumers/${vhost}`);
    const foreignChannels = new Set<string>();
    for (const consumer of consumers ?? []) {
      const channel = consumer.channel_details?.name;
      if (consumer.queue?.name !== queue || channel === undefined) continue;
      if (consumer.consumer_tag?.startsWith(`${this.consumerTagPrefix}.`)) continue;
      foreignChannels.add(channel);
    }
    if (foreignChannels.size === 0) return 0;
    const channels = await this.management<{ name?: string; messages_unacknowledged?: number }[]>(
      `/api/vhosts/${vhost}/channels?columns=name,messages_unacknowledged`,
    );
    let unacknowledged = 0;
    for (const channel of channels ?? []) {
      if (channel.name !== undefined && foreignChannels.has(channel.name)) {
        unacknowledged += channel.messages_unacknowledged ?? 0;
      }
    }
    return unacknowledged;
  }

  /**
   * GET from the management API, shared with concurrent callers and reused for `depthCacheTtlInMs`;
   * undefined (and a throttled warning) when it fails, which is not reused.
   */
  private management<T>(path: string): Promise<T | undefined> {
    return this.readManagement(path, () => this.fetchManagement<T>(path)) as Promise<T | undefined>;
  }

  private async fetchManagement<T>(path: string): Promise<T | undefined> {
    const { baseUrl, authorization } = this.options.management;
    try {
      const response = await fetch(`${baseUrl}${path}`, {
        headers: authorization ? { authorization } : {},
        signal: AbortSignal.timeout(MANAGEMENT_TIMEOUT_IN_MS),
      });
      if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
      return (await response.json()) as T;
    } catch (error) {
      const now = Date.now();
      if (now - this.lastManagementWarningAt >= MANAGEMENT_WARNING_INTERVAL_IN_MS) {
        this.lastManagementWarningAt = now;
        this.logger?.warn(
          { err: error, managementUrl: baseUrl },
          'RabbitMQ management API unavailable: queue depth counts only what this process sees',
        );
      }
      return undefined;
    }
  }

  /**
   * Takes up to `maxCount` dead letters (unacknowledged), then puts them all back: a classic queue
   * requeues them in their original places, so the order stays oldest first.
   */
  private async peek(queue: string, maxCount: number): Promise<DeadLetteredMessage<unknown>[]> {
    const link = await this.acquire(Date.now() + this.options.sendTimeoutInMs);
    const channel = await this.openChannel(link);
    const taken: Message[] = [];
    try {
      for (let i = 0; i < maxCount; i++) {
        const message = await channel.get(dlqOf(queue), { noAck: false });
        if (message === false) break;
        taken.push(message);
        if (message.fields.messageCount === 0) break;
      }
      channel.nackAll(true);
      // A synchronous call on the same channel returns only after the requeue reached the queue.
      await channel.checkQueue(dlqOf(queue));
    } catch (error) {
      if (amqpCodeOf(error) === 404) return [];
      throw error;
    } finally {
      await channel.close().catch(() => undefined);
    }
    return taken.map((message) => this.toDeadLettered(queue, message));
  }

  private toDeadLettered(queue: string, message: Message): DeadLetteredMessage<unknown> {
    const headers: MessagePropertyHeaders = message.properties.headers ?? {};
    const ownReason = headers[HEADER_DEAD_LETTER_REASON] as unknown;
    const ownDescription = headers[HEADER_DEAD_LETTER_DESCRIPTION] as unknown;
    const ownCount = headers[HEADER_DELIVERY_COUNT] as unknown;
    const id = messageIdOf(message);
    let body: unknown;
    try {
      body = decodeBody(message.content);
    } catch {
      body = message.content.toString('utf8');
    }
    if (typeof ownReason === 'string') {
      return {
        id,
        body,
        deliveryCount: typeof ownCount === 'number' ? ownCount : deliveryCountOf(message),
        reason: ownReason,
        description: typeof ownDescription === 'string' ? ownDescription : '',
      };
    }
    // Dead-lettered by the broker itself.
    const deaths = (headers['x-death'] ?? []) as { reason?: unknown; queue?: unknown }[];
    const death = deaths.find((d) => d.queue === queue) ?? deaths[0];
    const brokerReason = typeof death?.reason === 'string' ? death.reason : 'unknown';
    if (brokerReason === 'delivery_limit') {
      return {
        id,
        body,
        deliveryCount: this.options.maxDeliveryCount,
        reason: MAX_DELIVERY_COUNT_EXCEEDED,
        description: `delivered ${this.options.maxDeliveryCount} times without being completed`,
      };
    }
    return {
      id,
      body,
      deliveryCount: deliveryCountOf(message),
      reason: brokerReason,
      description: `dead-lettered by RabbitMQ (${brokerReason})`,
    };
  }
}

// ---- consuming -----------------------------------------------------------------------------------

interface Delivery {
  readonly message: Message;
  readonly channel: Channel;
  readonly linkId: number;
  readonly id: string;
  readonly deliveryCount: number;
  readonly receivedAt: number;
  readonly controller: AbortController;
  lockTimer: NodeJS.Timeout | undefined;
  /** Settled, or given up with its lock or channel: the handler's outcome is void from then on. */
  done: boolean;
}

/**
 * One `consume` call: a channel with a broker consumer on it, restarted on every new connection.
 *
 * The lock is emulated like the memory transport's: a delivery's lock lasts `lockDurationInMs` and
 * is renewed while the handler runs until `maxAutoLockRenewalDurationInMs` have passed since
 * receipt; at the next expiry the lock is lost: the message is abandoned (nack with requeue, or
 * dead-lettered if it was its last delivery) and the handler's signal aborts with `LOCK_LOST`. A
 * handler that outlived its lock keeps its concurrency slot until it returns; deliveries that
 * arrive meanwhile wait in a local backlog, so no more than `concurrency` handlers ever run.
 */
class Consumer {
  readonly queue: string;
  private readonly transport: RabbitMqTransport;
  private readonly handler: MessageHandler<unknown>;
  private readonly concurrency: number;
  private readonly maxAutoLockRenewalDurationInMs: number;

  private channel: Channel | undefined;
  /** The connection `channel` belongs to. */
  private channelLinkId = 0;
  private consumerTag: string | undefined;
  private starting: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartAttempts = 0;
  private tagCount = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Handler calls still running, including those whose outcome is void: they hold their slot. */
  private running = 0;
  /** Received and not yet settled: what this instance holds unacknowledged. */
  private readonly held = new Set<Delivery>();
  private readonly backlog: Delivery[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    transport: RabbitMqTransport,
    queue: string,
    handler: MessageHandler<unknown>,
    concurrency: number,
    maxAutoLockRenewalDurationInMs: number,
  ) {
    this.transport = transport;
    this.queue = queue;
    this.handler = handler;
    this.concurrency = concurrency;
    this.maxAutoLockRenewalDurationInMs = maxAutoLockRenewalDurationInMs;
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** Whether the broker has this consumer registered now. */
  get registered(): boolean {
    return this.channel !== undefined && this.consumerTag !== undefined;
  }

  /** Starts consuming on `link` unless already consuming there. */
  start(link: Link): Promise<void> {
    if (this.closed || !link.open) return Promise.resolve();
    if (this.starting) return this.starting;
    if (this.channel && this.channelLinkId === link.id) return Promise.resolve();
    this.starting = this.open(link).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** Called on every new connection; failures are retried with backoff. */
  restartOn(link: Link): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.start(link).then(
      () => {
        // A start already under way for an earlier connection may have ended without consuming here.
        if (!this.closed && link.open && !(this.channel && this.channelLinkId === link.id)) this.scheduleRestart();
        else this.restartAttempts = 0;
      },
      (error: unknown) => {
        this.transport.logger?.warn({ err: error, queue: this.queue }, 'cannot restart a RabbitMQ consumer; retrying');
        this.scheduleRestart();
      },
    );
  }

  private scheduleRestart(): void {
    if (this.closed || this.restartTimer) return;
    const { reconnectInitialDelayInMs, reconnectMaxDelayInMs } = this.transport.options;
    const delay = backoffDelay(this.restartAttempts++, reconnectInitialDelayInMs, reconnectMaxDelayInMs);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      // Without a connection, the transport restarts every consumer when it reconnects.
      const link = this.transport.currentLink();
      if (link) this.restartOn(link);
    }, delay);
  }

  private async open(link: Link): Promise<void> {
    await this.transport.ensureQueue(link, this.queue);
    const channel = await this.transport.openChannel(link);
    channel.on('close', () => this.onChannelClosed(channel, link));
    try {
      await channel.prefetch(this.concurrency);
      if (this.closed) throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'the subscription is closed');
      const consumerTag = `${this.transport.consumerTagPrefix}.${++this.tagCount}`;
      this.channel = channel;
      this.channelLinkId = link.id;
      await channel.consume(this.queue, (message) => this.onMessage(channel, link, message), { consumerTag });
      this.consumerTag = consumerTag;
    } catch (error) {
      if (this.channel === channel) this.channel = undefined;
      await channel.close().catch(() => undefined);
      if (!this.closed) throw error;
    }
  }

  private onChannelClosed(channel: Channel, link: Link): void {
    if (this.channel === channel) {
      this.channel = undefined;
      this.consumerTag = undefined;
    }
    // The broker requeues what this channel held: whatever the handlers do now is void.
    for (const delivery of [...this.held]) {
      if (delivery.channel === channel) {
        this.release(delivery);
        delivery.controller.abort(
          new OrchestratorError(
            'LOCK_LOST',
            `the channel of message ${delivery.id} closed; the broker will redeliver it`,
            { retryable: true },
          ),
        );
      }
    }
    this.notifyIfIdle();
    // amqplib closes the channels of a dropped connection before it reports the connection closed:
    // look again once it has, so that only a channel-level failure restarts the consumer here (the
    // transport restarts every consumer when it reconnects).
    setImmediate(() => {
      if (this.closed || !link.open || this.channel || this.starting) return;
      this.transport.logger?.warn({ queue: this.queue }, 'RabbitMQ consumer channel closed; restarting it');
      this.scheduleRestart();
    });
  }

  private onMessage(channel: Channel, link: Link, message: Message | null): void {
    if (message === null) {
      // The broker cancelled the consumer, e.g. because the queue was deleted: declare it again.
      this.transport.logger?.warn({ queue: this.queue }, 'RabbitMQ cancelled a consumer; restarting it');
      this.transport.forgetQueue(link, this.queue);
      void channel.close().catch(() => undefined);
      return;
    }
    const delivery: Delivery = {
      message,
      channel,
      linkId: link.id,
      id: messageIdOf(message),
      deliveryCount: deliveryCountOf(message),
      receivedAt: Date.now(),
      controller: new AbortController(),
      lockTimer: undefined,
      done: false,
    };
    this.held.add(delivery);
    this.armLockTimer(delivery);
    if (this.running < this.concurrency) void this.run(delivery);
    else this.backlog.push(delivery);
  }

  private async run(delivery: Delivery): Promise<void> {
    this.running++;
    let failure: { error: unknown } | undefined;
    let body: unknown;
    let decoded = true;
    try {
      body = decodeBody(delivery.message.content);
    } catch (error) {
      decoded = false;
      failure = {
        error: new OrchestratorError(
          'INVALID_JSON',
          `the body of message ${delivery.id} is not JSON: ${describeError(error)}`,
        ),
      };
    }
    if (decoded) {
      try {
        await this.handler(
          { id: delivery.id, body, deliveryCount: delivery.deliveryCount, enqueuedAt: enqueuedAtOf(delivery.message) },
          delivery.controller.signal,
        );
      } catch (error) {
        failure = { error };
      }
    }
    if (!delivery.done) {
      if (!failure) this.complete(delivery);
      else if (isOrchestratorError(failure.error) && !failure.error.retryable) {
        await this.deadLetter(delivery, failure.error.code, failure.error.message);
      } else await this.abandon(delivery, describeError(failure.error));
    }
    this.running--;
    this.pump();
    this.notifyIfIdle();
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const next = this.backlog.shift();
      if (!next) return;
      if (!next.done) void this.run(next);
    }
  }

  /** Marks a delivery as settled: its lock and slot in `held` go, late outcomes are ignored. */
  private release(delivery: Delivery): void {
    delivery.done = true;
    clearTimeout(delivery.lockTimer);
    this.held.delete(delivery);
    const at = this.backlog.indexOf(delivery);
    if (at >= 0) this.backlog.splice(at, 1);
  }

  /** Whether an ack or nack can still reach the broker for this delivery. */
  private settleable(delivery: Delivery): boolean {
    return this.channel === delivery.channel;
  }

  private complete(delivery: Delivery): void {
    this.release(delivery);
    if (!this.settleable(delivery)) return;
    try {
      delivery.channel.ack(delivery.message);
    } catch (error) {
      this.transport.logger?.debug({ err: error, messageId: delivery.id }, 'ack failed; the broker will redeliver');
    }
  }

  /** Back to the queue, or to the dead letters once it has had all its deliveries. */
  private async abandon(delivery: Delivery, description: string): Promise<void> {
    if (delivery.deliveryCount >= this.transport.options.maxDeliveryCount) {
      await this.deadLetter(delivery, MAX_DELIVERY_COUNT_EXCEEDED, description);
      return;
    }
    this.requeue(delivery);
  }

  private requeue(delivery: Delivery): void {
    this.release(delivery);
    if (!this.settleable(delivery)) return;
    try {
      delivery.channel.nack(delivery.message, false, true);
    } catch (error) {
      this.transport.logger?.debug({ err: error, messageId: delivery.id }, 'nack failed; the broker will redeliver');
    }
  }

  /**
   * Publishes a copy to the dead-letter queue and, once confirmed, acks the original, so the
   * message is never lost (a duplicate dead letter is possible if the ack is lost).
   */
  private async deadLetter(delivery: Delivery, reason: string, description: string): Promise<void> {
    // Stays in `held` while the copy is published, so depth does not miss it.
    delivery.done = true;
    clearTimeout(delivery.lockTimer);
    const link = this.transport.currentLink();
    if (!link || link.id !== delivery.linkId || !this.settleable(delivery)) {
      this.release(delivery); // the broker redelivers it
      return;
    }
    try {
      await this.transport.publishDeadLetter(link, this.queue, delivery.message, {
        reason,
        description,
        deliveryCount: delivery.deliveryCount,
      });
    } catch (error) {
      this.transport.logger?.warn(
        { err: error, queue: this.queue, messageId: delivery.id },
        'dead-lettering failed; the message goes back to the queue',
      );
      this.requeue(delivery);
      return;
    }
    this.complete(delivery);
  }

  /**
   * Like the Service Bus SDK, renews the lock just before it expires for as long as the renewal
   * window since receipt lasts; once the window is over, the next expiry loses the lock.
   */
  private armLockTimer(delivery: Delivery): void {
    const { lockDurationInMs } = this.transport.options;
    delivery.lockTimer = setTimeout(() => {
      if (delivery.done) return;
      const renewUntil = delivery.receivedAt + this.maxAutoLockRenewalDurationInMs;
      if (this.maxAutoLockRenewalDurationInMs > 0 && Date.now() < renewUntil) this.armLockTimer(delivery);
      else void this.loseLock(delivery);
    }, lockDurationInMs);
    delivery.lockTimer.unref();
  }

  private async loseLock(delivery: Delivery): Promise<void> {
    // Abandon first (the nack goes out synchronously), then tell the handler.
    const abandoning = this.abandon(delivery, `the lock of message ${delivery.id} expired before the handler settled`);
    delivery.controller.abort(
      new OrchestratorError('LOCK_LOST', `the lock of message ${delivery.id} expired`, { retryable: true }),
    );
    await abandoning;
    this.pump();
    this.notifyIfIdle();
  }

  /** Stops receiving (basic.cancel), waits for in-flight handlers and settlements, closes the channel. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.transport.forgetConsumer(this);
    await this.starting?.catch(() => undefined);
    const { channel, consumerTag } = this;
    // Deliveries that arrive before the broker confirms the cancel are handled like the others.
    if (channel && consumerTag) await channel.cancel(consumerTag).catch(() => undefined);
    this.consumerTag = undefined;
    if (this.running > 0 || this.held.size > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    this.channel = undefined;
    await channel?.close().catch(() => undefined);
  }

  private notifyIfIdle(): void {
    if (this.closed && this.running === 0 && this.held.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}

// ---- helpers -------------------------------------------------------------------------------------

const dlqOf = (queue: string): string => `${queue}.dlq`;
const bucketQueueOf = (queue: string, bucketInMs: number): string => `${queue}.delay.${bucketInMs}`;

/** The smallest bucket that is not shorter than the delay: rounding up, so nothing arrives early. */
function bucketFor(delayInMs: number): number {
  const exponent = Math.max(MIN_BUCKET_EXPONENT, Math.ceil(Math.log2(delayInMs)));
  return 2 ** Math.min(exponent, MAX_BUCKET_EXPONENT);
}

const MAX_QUEUE_NAME_BYTES = 255 - `.delay.${MAX_DELAY_IN_MS}`.length;

function validateQueueName(queue: string): void {
  if (typeof queue !== 'string' || queue.length === 0) throw new RangeError('queue name must not be empty');
  if (Buffer.byteLength(queue) > MAX_QUEUE_NAME_BYTES) {
    throw new RangeError(`queue name must be at most ${MAX_QUEUE_NAME_BYTES} bytes, got ${queue}`);
  }
  if (queue.startsWith('amq.')) throw new RangeError(`queue names starting with "amq." are reserved, got ${queue}`);
  if (queue.endsWith('.dlq') || /\.delay\.\d+$/.test(queue)) {
    throw new RangeError(`queue names ending in .dlq or .delay.<n> are reserved for the transport, got ${queue}`);
  }
}

function prepare(message: OutgoingMessage<unknown>): Outgoing {
  const delay = message.delayInMs ?? 0;
  if (delay > MAX_DELAY_IN_MS) throw new RangeError(`delayInMs must be at most ${MAX_DELAY_IN_MS}, got ${delay}`);
  const delayInMs = delay > 0 ? Math.ceil(delay) : 0;
  return {
    delayInMs,
    content: encodeBody(message.body),
    properties: {
      persistent: true,
      messageId: message.messageId ?? randomUUID(),
      // AMQP timestamps are seconds since the epoch.
      timestamp: Math.floor(Date.now() / 1000),
      contentType: 'application/json',
      // The exact delay; the bucket's TTL only bounds how late a message behind a longer one can be.
      ...(delayInMs > 0 && { expiration: String(delayInMs) }),
    },
  };
}

function encodeBody(body: unknown): Buffer {
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (error) {
    throw new OrchestratorError(
      'VALIDATION_FAILED',
      `the message body is not serializable as JSON: ${describeError(error)}`,
      {
        cause: error,
      },
    );
  }
  // `undefined` has no JSON form: an empty body stands for it.
  return Buffer.from(json ?? '', 'utf8');
}

function decodeBody(content: Buffer): unknown {
  return content.length === 0 ? undefined : JSON.parse(content.toString('utf8'));
}

function messageIdOf(message: Message): string {
  const id = message.properties.messageId as unknown;
  return typeof id === 'string' && id.length > 0 ? id : randomUUID();
}

/** RabbitMQ's quorum queues count redeliveries in `x-delivery-count` (absent on the first delivery). */
function deliveryCountOf(message: Message): number {
  const count = message.properties.headers?.['x-delivery-count'] as unknown;
  return (typeof count === 'number' ? count : 0) + 1;
}

/** When the message became deliverable: sent, or released by a delay queue, whichever is later. */
function enqueuedAtOf(message: Message): Date {
  const sentAt = typeof message.properties.timestamp === 'number' ? message.properties.timestamp * 1000 : 0;
  let releasedAt = 0;
  const deaths = (message.properties.headers?.['x-death'] ?? []) as { reason?: unknown; time?: { value?: unknown } }[];
  for (const death of deaths) {
    const seconds = death.time?.value;
    if (death.reason === 'expired' && typeof seconds === 'number') releasedAt = Math.max(releasedAt, seconds * 1000);
  }
  const at = Math.max(sentAt, releasedAt);
  return new Date(at > 0 ? at : Date.now());
}

function backoffDelay(attempt: number, initialInMs: number, maxInMs: number): number {
  const base = Math.min(maxInMs, initialInMs * 2 ** Math.min(attempt, 30));
  return base / 2 + (Math.random() * base) / 2;
}

/** Resolves with the promise's value, or undefined once `deadline` has passed. */
async function withDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

const truncate = (text: string, maxLength: number): string =>
  text.length <= maxLength ? text : `${text.slice(0, maxLength - 1)}…`;

const escapeRegExp = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');

/** amqplib reports a broker's channel or connection close code as `code`. */
function amqpCodeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

const isNack = (error: unknown): boolean => error instanceof Error && error.message === 'message nacked';

/** Failures a new connection may cure: everything but our own validation and configuration errors. */
function isTransient(error: unknown): boolean {
  if (error instanceof RangeError) return false;
  if (isOrchestratorError(error)) return error.retryable;
  const code = amqpCodeOf(error);
  return code !== 406 && code !== 403;
}

/** The boundary: amqplib errors become `OrchestratorError`s; ours and RangeErrors pass through. */
function translateError(error: unknown, context: string): unknown {
  if (isOrchestratorError(error) || error instanceof RangeError) return error;
  const code = amqpCodeOf(error);
  if (code === 406) {
    return new OrchestratorError(
      'CONFIG_INVALID',
      `${context}: ${describeError(error)}. A queue of that name exists with other arguments (e.g. another maxDeliveryCount); delete it or use the same settings`,
      { cause: error },
    );
  }
  if (code === 403) {
    return new OrchestratorError('DEPENDENCY_UNAVAILABLE', `${context}: access refused: ${describeError(error)}`, {
      retryable: false,
      cause: error,
    });
  }
  return new OrchestratorError('DEPENDENCY_UNAVAILABLE', `${context}: ${describeError(error)}`, {
    retryable: true,
    cause: error,
  });
}

/**
 * amqplib writes each frame (a publish, an ack) to the socket on its own: one system call each,
 * which on loopback also runs the receiver's TCP path. Corking the socket until the end of the
 * current tick sends everything written in it (a batch of publishes, the acks of a burst of
 * deliveries) in one `writev`. Backpressure is unchanged: `write` still returns false past the
 * high-water mark. Does nothing if this amqplib keeps its socket elsewhere.
 */
function coalesceWrites(model: ChannelModel): void {
  const socket = (model as unknown as { connection?: { stream?: unknown } }).connection?.stream;
  if (!(socket instanceof Socket)) return;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = (...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  };
}
