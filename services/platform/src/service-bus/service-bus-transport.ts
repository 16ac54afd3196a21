import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DefaultAzureCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import { ServiceBusAdministrationClient, ServiceBusClient, isServiceBusError } from '@azure/service-bus';
import type {
  ProcessErrorArgs,
  ServiceBusMessage,
  ServiceBusReceivedMessage,
  ServiceBusReceiver,
  ServiceBusSender,
} from '@azure/service-bus';
import Long from 'long';
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
import type { Logger } from 'pino';
import { NETWORK_ERROR_CODES, errorCodeOf } from '../shared/network-errors.ts';
import { createSharedReads } from '../shared/shared-reads.ts';
import {
  DEFAULT_DEPTH_CACHE_TTL_IN_MS,
  DEFAULT_MAX_AUTO_LOCK_RENEWAL_DURATION_IN_MS,
  DEFAULT_PEEK_MAX_COUNT,
} from '../shared/transport-defaults.ts';

/** Settings for queues the transport creates (see {@link ServiceBusTransportOptions.createQueues}). */
export interface ServiceBusQueueSettings {
  /** How long a delivery stays locked without renewal; Service Bus allows 5 s to 5 min. */
  lockDurationInMs: number;
  /** Deliveries after which a message that is still abandoned is dead-lettered. */
  maxDeliveryCount: number;
}

/** The SDK's retry policy for AMQP operations (and, except `timeoutInMs`, for management calls). */
export interface ServiceBusRetrySettings {
  /** @default 3 */
  maxRetries?: number;
  /** @default 30000 */
  retryDelayInMs?: number;
  /** @default 90000 */
  maxRetryDelayInMs?: number;
  /** How long one try of an AMQP operation may take. @default 60000 */
  timeoutInMs?: number;
}

export interface ServiceBusTransportOptions {
  /**
   * A namespace connection string (shared access key), e.g. for Microsoft's emulator or the test
   * server (`…;UseDevelopmentEmulator=true`: plain TCP). Give this or `fullyQualifiedNamespace`.
   */
  connectionString?: string;
  /** e.g. `orch-prod.servicebus.windows.net`, authenticated with `credential`. */
  fullyQualifiedNamespace?: string;
  /** Only with `fullyQualifiedNamespace`. @default new DefaultAzureCredential() */
  credential?: TokenCredential;
  /**
   * How long a queue's depth is reused before it is read again. Depth comes from
   * `getQueueRuntimeProperties`, a management call the Standard tier throttles (10 credits each),
   * so callers that poll share one read; concurrent callers always share the request in flight.
   * @default 5000
   */
  depthCacheTtlInMs?: number;
  /**
   * Base URL that management (ATOM over HTTP: depth, queue creation) requests are sent to instead of
   * the namespace's `https://` endpoint, e.g. `http://localhost:5300` for Microsoft's emulator
   * behind a connection string with some other port. @default for `UseDevelopmentEmulator=true`
   * connection strings: `http://<host>:5300` (where Microsoft's emulator serves management) when the
   * endpoint names no port or AMQP's 5672 (the emulator's), else `http://<host>:<port>` (the local
   * test server serves both on one port); otherwise the namespace itself.
   */
  administrationEndpoint?: string;
  /**
   * Create a queue that does not exist yet, with these settings, before it is first used (sends,
   * consumes, depth and dead-letter reads), through the administration client. Needs Manage
   * rights. In production the infrastructure creates the queues and this stays unset.
   */
  createQueues?: ServiceBusQueueSettings;
  retryOptions?: ServiceBusRetrySettings;
  logger?: Logger;
}

const EMULATOR_MANAGEMENT_PORT = 5300;
/** Microsoft's emulator listens for AMQP here; nothing serves management on it. */
const EMULATOR_AMQP_PORT = '5672';
/** Service Bus keeps dead-letter descriptions and property values short; so do we. */
const MAX_DESCRIPTION_LENGTH = 4_096;
/** Messages per `scheduleMessages` request, which travels as one AMQP message. */
const MAX_SCHEDULE_BATCH_COUNT = 100;
const MAX_SCHEDULE_BATCH_BYTES = 192 * 1024;
/**
 * Application properties the transport sets when it abandons a message: the handler's error and the
 * delivery it failed on. When the broker dead-letters the message for `MaxDeliveryCountExceeded`
 * (its description is generic), the dead letter's description is this error instead.
 */
const LAST_ERROR_PROPERTY = 'OrchLastError';
const LAST_ERROR_DELIVERY_COUNT_PROPERTY = 'OrchLastErrorDeliveryCount';
const MAX_DELIVERY_COUNT_EXCEEDED = 'MaxDeliveryCountExceeded';

/**
 * A {@link QueueTransport} on Azure Service Bus queues (durable), through `@azure/service-bus`.
 *
 * - Sending: bodies travel as UTF-8 JSON (`contentType: application/json`) with the given
 *   `messageId` or a random UUID; `delayInMs > 0` schedules the message (`scheduleMessages`).
 *   `sendBatch` packs messages into as few AMQP batch transfers as the link's maximum message size
 *   allows, and schedules delayed ones with one request per delay (up to 100 per request); a batch
 *   that needs several transfers is not atomic: a failure can leave the first transfers sent.
 * - Consuming: one peek-lock receiver per `consume` call, `maxConcurrentCalls = concurrency`; the
 *   SDK renews locks for `maxAutoLockRenewalDurationInMs`. The handler's outcome settles the message:
 *   complete, dead-letter (non-retryable `OrchestratorError`: reason = code, description = message)
 *   or abandon (anything else), as the port says. The handler's signal aborts with a retryable
 *   `LOCK_LOST` when the message's `lockedUntilUtc` passes without renewal (renewal failed or its
 *   window is over); the outcome is then ignored, since the broker redelivers the message. The
 *   expiry is judged on this machine's clock against the broker's, so clock skew moves it.
 * - Depth: `getQueueRuntimeProperties` (active includes locked messages), cached per queue for
 *   `depthCacheTtlInMs`; needs Manage rights on the namespace.
 * - Dead letters: peeked from `<queue>/$DeadLetterQueue`, oldest first.
 *
 * Failures are translated at the boundary: busy, timeouts and connection problems become a
 * retryable `DEPENDENCY_UNAVAILABLE`; a missing queue or missing rights a non-retryable one; a
 * message over the size limit `PAYLOAD_TOO_LARGE`. A body that JSON cannot encode throws
 * `TypeError` before any I/O. After {@link QueueTransport.close} sends, consumes and dead-letter
 * reads reject with a retryable `DEPENDENCY_UNAVAILABLE`; depth reads keep working.
 *
 * @throws OrchestratorError `CONFIG_INVALID` unless exactly one of `connectionString` and
 * `fullyQualifiedNamespace` is given.
 * @throws RangeError when `depthCacheTtlInMs` is negative.
 */
export function createServiceBusTransport(options: ServiceBusTransportOptions): QueueTransport {
  const { client, administration } = createClients(options);
  const logger = options.logger;
  const depthCacheTtlInMs = options.depthCacheTtlInMs ?? DEFAULT_DEPTH_CACHE_TTL_IN_MS;
  if (!(depthCacheTtlInMs >= 0))
    throw new RangeError(`depthCacheTtlInMs must not be negative, got ${depthCacheTtlInMs}`);

  const senders = new Map<string, ServiceBusSender>();
  const deadLetterReceivers = new Map<string, ServiceBusReceiver>();
  const consumers = new Set<Consumer>();
  const ensuredQueues = new Map<string, Promise<void>>();
  const readDepth = createSharedReads<string, QueueDepth>({ ttlInMs: depthCacheTtlInMs });
  let closing: Promise<void> | undefined;

  const assertOpen = (): void => {
    if (closing) {
      throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'the Service Bus transport is closed', { retryable: true });
    }
  };
  const senderFor = (queue: string): ServiceBusSender => {
    let sender = senders.get(queue);
    if (!sender) senders.set(queue, (sender = client.createSender(queue)));
    return sender;
  };
  const ensureQueue = (queue: string): Promise<void> => {
    const settings = options.createQueues;
    if (!settings) return Promise.resolve();
    let ensured = ensuredQueues.get(queue);
    if (!ensured) {
      ensured = createQueueIfMissing(administration, queue, settings);
      ensuredQueues.set(queue, ensured);
      ensured.catch(() => ensuredQueues.delete(queue));
    }
    return ensured;
  };

  return {
    kind: 'servicebus',
    durable: true,

    async send<T>(queue: string, body: T, sendOptions: SendOptions = {}): Promise<void> {
      assertOpen();
      const { abortSignal } = sendOptions;
      abortSignal?.throwIfAborted();
      const message = toServiceBusMessage(body, sendOptions.messageId);
      const delayInMs = sendOptions.delayInMs ?? 0;
      await translated(`send to queue "${queue}"`, abortSignal, async () => {
        await ensureQueue(queue);
        const sender = senderFor(queue);
        if (delayInMs > 0) {
          await sender.scheduleMessages(message, new Date(Date.now() + delayInMs), { abortSignal });
        } else {
          await sender.sendMessages(message, { abortSignal });
        }
      });
    },

    async sendBatch<T>(
      queue: string,
      messages: readonly OutgoingMessage<T>[],
      batchOptions: { abortSignal?: AbortSignal } = {},
    ): Promise<void> {
      assertOpen();
      const { abortSignal } = batchOptions;
      abortSignal?.throwIfAborted();
      // Encode every body first, so a body JSON cannot encode rejects the batch before any I/O.
      const now = Date.now();
      const immediate: ServiceBusMessage[] = [];
      const scheduled = new Map<number, ServiceBusMessage[]>();
      for (const m of messages) {
        const message = toServiceBusMessage(m.body, m.messageId);
        const delayInMs = m.delayInMs ?? 0;
        if (delayInMs > 0) {
          const group = scheduled.get(delayInMs);
          if (group) group.push(message);
          else scheduled.set(delayInMs, [message]);
        } else {
          immediate.push(message);
        }
      }
      if (messages.length === 0) return;
      await translated(`send a batch to queue "${queue}"`, abortSignal, async () => {
        await ensureQueue(queue);
        const sender = senderFor(queue);
        if (immediate.length > 0) await sendInBatches(sender, immediate, abortSignal);
        for (const [delayInMs, group] of scheduled) {
          for (const chunk of scheduleChunks(group)) {
            await sender.scheduleMessages(chunk, new Date(now + delayInMs), { abortSignal });
          }
        }
      });
    },

    async consume<T>(
      queue: string,
      handler: MessageHandler<T>,
      consumeOptions: ConsumeOptions = {},
    ): Promise<Subscription> {
      assertOpen();
      const concurrency = consumeOptions.concurrency ?? 1;
      if (!Number.isInteger(concurrency) || concurrency < 1) {
        throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
      }
      const maxRenewal = consumeOptions.maxAutoLockRenewalDurationInMs ?? DEFAULT_MAX_AUTO_LOCK_RENEWAL_DURATION_IN_MS;
      if (!(maxRenewal >= 0)) {
        throw new RangeError(`maxAutoLockRenewalDurationInMs must not be negative, got ${maxRenewal}`);
      }
      await translated(`consume queue "${queue}"`, undefined, () => ensureQueue(queue));
      assertOpen();
      const consumer = new Consumer({
        queue,
        receiver: client.createReceiver(queue, {
          receiveMode: 'peekLock',
          maxAutoLockRenewalDurationInMs: maxRenewal,
          skipParsingBodyAsJson: true,
        }),
        handler: handler as MessageHandler<unknown>,
        concurrency,
        logger,
        onClosed: (closed) => consumers.delete(closed),
      });
      consumers.add(consumer);
      consumer.start();
      return { close: () => consumer.close() };
    },

    getQueueDepth(queue: string): Promise<QueueDepth> {
      return readDepth(queue, () =>
        translated(`read the depth of queue "${queue}"`, undefined, async () => {
          await ensureQueue(queue);
          const properties = await administration.getQueueRuntimeProperties(queue);
          return {
            active: properties.activeMessageCount,
            scheduled: properties.scheduledMessageCount,
            deadLetter: properties.deadLetterMessageCount,
          };
        }),
      );
    },

    async peekDeadLetters<T>(
      queue: string,
      peekOptions: { maxCount?: number } = {},
    ): Promise<DeadLetteredMessage<T>[]> {
      assertOpen();
      const maxCount = peekOptions.maxCount ?? DEFAULT_PEEK_MAX_COUNT;
      if (maxCount <= 0) return [];
      return translated(`peek the dead letters of queue "${queue}"`, undefined, async () => {
        await ensureQueue(queue);
        let receiver = deadLetterReceivers.get(queue);
        if (!receiver) {
          receiver = client.createReceiver(queue, { subQueueType: 'deadLetter', skipParsingBodyAsJson: true });
          deadLetterReceivers.set(queue, receiver);
        }
        // Peek from the start every time: without a sequence number the SDK continues where the
        // previous peek of this entity stopped.
        const peeked: ServiceBusReceivedMessage[] = [];
        let from = Long.ONE;
        while (peeked.length < maxCount) {
          const page = await receiver.peekMessages(maxCount - peeked.length, { fromSequenceNumber: from });
          const last = page[page.length - 1];
          if (!last?.sequenceNumber) break;
          peeked.push(...page);
          from = last.sequenceNumber.add(1);
        }
        return peeked.map((m) => toDeadLetteredMessage<T>(m));
      });
    },

    close(): Promise<void> {
      closing ??= (async () => {
        await Promise.allSettled([...consumers].map((consumer) => consumer.close()));
        const links = [...senders.values(), ...deadLetterReceivers.values()];
        await Promise.allSettled(links.map((link) => link.close()));
        await client.close();
      })();
      return closing;
    },
  };
}

function createClients(options: ServiceBusTransportOptions): {
  client: ServiceBusClient;
  administration: ServiceBusAdministrationClient;
} {
  const { connectionString, fullyQualifiedNamespace } = options;
  if ((connectionString === undefined) === (fullyQualifiedNamespace === undefined)) {
    throw new OrchestratorError(
      'CONFIG_INVALID',
      'createServiceBusTransport needs exactly one of connectionString and fullyQualifiedNamespace',
    );
  }
  if (connectionString !== undefined && options.credential) {
    throw new OrchestratorError('CONFIG_INVALID', 'credential only applies with fullyQualifiedNamespace');
  }
  const retry = options.retryOptions ?? {};
  const clientOptions = { retryOptions: retry };
  const administrationOptions = {
    retryOptions: {
      ...(retry.maxRetries !== undefined && { maxRetries: retry.maxRetries }),
      ...(retry.retryDelayInMs !== undefined && { retryDelayInMs: retry.retryDelayInMs }),
      ...(retry.maxRetryDelayInMs !== undefined && { maxRetryDelayInMs: retry.maxRetryDelayInMs }),
    },
  };
  let client: ServiceBusClient;
  let administration: ServiceBusAdministrationClient;
  if (connectionString !== undefined) {
    client = new ServiceBusClient(connectionString, clientOptions);
    administration = new ServiceBusAdministrationClient(connectionString, administrationOptions);
  } else {
    const credential = options.credential ?? new DefaultAzureCredential();
    client = new ServiceBusClient(fullyQualifiedNamespace ?? '', credential, clientOptions);
    administration = new ServiceBusAdministrationClient(
      fullyQualifiedNamespace ?? '',
      credential,
      administrationOptions,
    );
  }
  // An empty setting (an unset environment variable passed through) means the default.
  const endpoint = options.administrationEndpoint || emulatorAdministrationEndpoint(connectionString);
  if (endpoint !== undefined) redirectAdministration(administration, endpoint);
  return { client, administration };
}

/**
 * The 7.9 SDK always sends management requests to `https://<endpoint host>`, even for the emulator,
 * which serves them over plain HTTP. Where an emulator is meant, send them there instead.
 */
function emulatorAdministrationEndpoint(connectionString: string | undefined): string | undefined {
  if (connectionString === undefined) return undefined;
  const settings = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) settings.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const endpoint = settings.get('endpoint');
  if (settings.get('usedevelopmentemulator')?.toLowerCase() !== 'true' || endpoint === undefined) return undefined;
  const url = new URL(endpoint.includes('://') ? endpoint : `sb://${endpoint}`);
  const port = url.port && url.port !== EMULATOR_AMQP_PORT ? url.port : EMULATOR_MANAGEMENT_PORT;
  return `http://${url.hostname}:${port}`;
}

function redirectAdministration(administration: ServiceBusAdministrationClient, endpoint: string): void {
  let base: URL;
  try {
    base = new URL(endpoint);
  } catch (e) {
    throw new OrchestratorError('CONFIG_INVALID', `administrationEndpoint is not a URL: ${endpoint}`, { cause: e });
  }
  administration.pipeline.addPolicy({
    name: 'orchAdministrationEndpoint',
    sendRequest(request, next) {
      const url = new URL(request.url);
      url.protocol = base.protocol;
      url.host = base.host;
      request.url = url.toString();
      if (base.protocol === 'http:') request.allowInsecureConnection = true;
      return next(request);
    },
  });
}

async function createQueueIfMissing(
  administration: ServiceBusAdministrationClient,
  queue: string,
  settings: ServiceBusQueueSettings,
): Promise<void> {
  try {
    await administration.getQueue(queue);
    return;
  } catch (e) {
    if (restCodeOf(e) !== 'MessageEntityNotFoundError') throw e;
  }
  try {
    await administration.createQueue(queue, {
      lockDuration: isoDuration(settings.lockDurationInMs),
      maxDeliveryCount: settings.maxDeliveryCount,
      deadLetteringOnMessageExpiration: true,
    });
  } catch (e) {
    // Another process created it first.
    if (restCodeOf(e) !== 'MessageEntityAlreadyExistsError') throw e;
  }
}

function isoDuration(ms: number): string {
  return `PT${Number((ms / 1000).toFixed(3))}S`;
}

function toServiceBusMessage(body: unknown, messageId: string | undefined): ServiceBusMessage {
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (e) {
    throw new TypeError(`the message body cannot be encoded as JSON: ${describeError(e)}`, { cause: e });
  }
  return {
    // Encoded here rather than by the SDK, so that receiving can tell a JSON body from any other.
    body: Buffer.from(json ?? 'null', 'utf8'),
    messageId: messageId ?? randomUUID(),
    contentType: 'application/json',
  };
}

function decodeBody(message: ServiceBusReceivedMessage): unknown {
  const body: unknown = message.body;
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : undefined;
  if (text === undefined) return body;
  return JSON.parse(text);
}

async function sendInBatches(
  sender: ServiceBusSender,
  messages: readonly ServiceBusMessage[],
  abortSignal: AbortSignal | undefined,
): Promise<void> {
  let batch = await sender.createMessageBatch({ abortSignal });
  for (const message of messages) {
    if (batch.tryAddMessage(message)) continue;
    if (batch.count === 0) {
      throw new OrchestratorError(
        'PAYLOAD_TOO_LARGE',
        `message ${String(message.messageId)} is larger than the queue's maximum message size (${batch.maxSizeInBytes} bytes)`,
      );
    }
    await sender.sendMessages(batch, { abortSignal });
    batch = await sender.createMessageBatch({ abortSignal });
    if (!batch.tryAddMessage(message)) {
      throw new OrchestratorError(
        'PAYLOAD_TOO_LARGE',
        `message ${String(message.messageId)} is larger than the queue's maximum message size (${batch.maxSizeInBytes} bytes)`,
      );
    }
  }
  if (batch.count > 0) await sender.sendMessages(batch, { abortSignal });
}

function* scheduleChunks(messages: readonly ServiceBusMessage[]): Generator<ServiceBusMessage[]> {
  let chunk: ServiceBusMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = (message.body as Buffer).length;
    if (chunk.length > 0 && (chunk.length >= MAX_SCHEDULE_BATCH_COUNT || bytes + size > MAX_SCHEDULE_BATCH_BYTES)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(message);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function toDeadLetteredMessage<T>(message: ServiceBusReceivedMessage): DeadLetteredMessage<T> {
  const properties = message.applicationProperties ?? {};
  const deliveryCount = message.deliveryCount ?? 0;
  const reason = message.deadLetterReason ?? '';
  let description = message.deadLetterErrorDescription ?? '';
  const lastError = properties[LAST_ERROR_PROPERTY];
  // The broker's description of MaxDeliveryCountExceeded is generic; the handler's error of the
  // last delivery says more, if it was that delivery that failed (not a lock that expired).
  if (
    reason === MAX_DELIVERY_COUNT_EXCEEDED &&
    typeof lastError === 'string' &&
    Number(properties[LAST_ERROR_DELIVERY_COUNT_PROPERTY]) === deliveryCount
  ) {
    description = lastError;
  }
  let body: unknown;
  try {
    body = decodeBody(message);
  } catch {
    body = Buffer.isBuffer(message.body) ? message.body.toString('utf8') : message.body;
  }
  return { id: String(message.messageId ?? ''), body: body as T, deliveryCount, reason, description };
}

const truncate = (text: string): string =>
  text.length <= MAX_DESCRIPTION_LENGTH ? text : `${text.slice(0, MAX_DESCRIPTION_LENGTH - 1)}…`;

interface ConsumerInit {
  queue: string;
  receiver: ServiceBusReceiver;
  handler: MessageHandler<unknown>;
  concurrency: number;
  logger: Logger | undefined;
  onClosed: (consumer: Consumer) => void;
}

/** One `consume` call: a receiver subscribed with the port's handler. */
class Consumer {
  private readonly init: ConsumerInit;
  private subscription: { close(): Promise<void> } | undefined;
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;

  constructor(init: ConsumerInit) {
    this.init = init;
  }

  start(): void {
    const { receiver, concurrency, logger, queue } = this.init;
    this.subscription = receiver.subscribe(
      {
        processMessage: (message) => this.process(message),
        processError: (args: ProcessErrorArgs) => {
          // The SDK keeps receiving (it reconnects by itself); tell the operator and carry on.
          logger?.warn(
            { queue, errorSource: args.errorSource, err: args.error },
            `Service Bus receiver error on queue ${queue}: ${describeError(args.error)}`,
          );
          return Promise.resolve();
        },
      },
      { maxConcurrentCalls: concurrency, autoCompleteMessages: false },
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const { receiver, logger, queue } = this.init;
      try {
        await this.subscription?.close();
      } catch (e) {
        logger?.warn({ queue, err: e }, `stopping the Service Bus receiver of queue ${queue} failed`);
      }
      // A message that arrived while the receiver was stopping is handled like any in flight.
      await nextTurn();
      if (this.running > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      try {
        await receiver.close();
      } catch (e) {
        logger?.warn({ queue, err: e }, `closing the Service Bus receiver of queue ${queue} failed`);
      }
      this.init.onClosed(this);
    })();
    return this.closing;
  }

  /** Runs the handler and settles by its outcome; never throws, so the SDK never settles by itself. */
  private async process(message: ServiceBusReceivedMessage): Promise<void> {
    this.running++;
    try {
      let body: unknown;
      try {
        body = decodeBody(message);
      } catch (e) {
        await this.settle(message, {
          error: new OrchestratorError('INVALID_JSON', `the message body is not JSON: ${describeError(e)}`),
        });
        return;
      }
      const lock = new LockWatch(message);
      let failure: { error: unknown } | undefined;
      try {
        await this.init.handler(
          {
            id: String(message.messageId ?? ''),
            body,
            // The broker counts earlier deliveries; the port counts this one too.
            deliveryCount: (message.deliveryCount ?? 0) + 1,
            enqueuedAt: message.enqueuedTimeUtc ?? new Date(),
          },
          lock.signal,
        );
      } catch (error) {
        failure = { error };
      }
      lock.stop();
      if (lock.lost) {
        this.init.logger?.debug(
          { queue: this.init.queue, messageId: message.messageId },
          'lock lost while the handler ran; its outcome is ignored',
        );
        return;
      }
      await this.settle(message, failure);
    } finally {
      this.running--;
      if (this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async settle(message: ServiceBusReceivedMessage, failure: { error: unknown } | undefined): Promise<void> {
    const { receiver, logger, queue } = this.init;
    try {
      if (!failure) {
        await receiver.completeMessage(message);
      } else if (isOrchestratorError(failure.error) && !failure.error.retryable) {
        await receiver.deadLetterMessage(message, {
          deadLetterReason: failure.error.code,
          deadLetterErrorDescription: truncate(failure.error.message),
        });
      } else {
        await receiver.abandonMessage(message, {
          [LAST_ERROR_PROPERTY]: truncate(describeError(failure.error)),
          [LAST_ERROR_DELIVERY_COUNT_PROPERTY]: (message.deliveryCount ?? 0) + 1,
        });
      }
    } catch (e) {
      // The broker redelivers a message whose settlement failed once its lock expires.
      const lockLost = isServiceBusError(e) && (e.code === 'MessageLockLost' || e.code === 'SessionLockLost');
      const level = lockLost ? 'debug' : 'warn';
      logger?.[level](
        { queue, messageId: message.messageId, err: e },
        `settling message ${String(message.messageId)} of queue ${queue} failed: ${describeError(e)}`,
      );
    }
  }
}

/**
 * Aborts a signal when a message's lock passes without renewal. The SDK's auto-renewal moves
 * `lockedUntilUtc` forward on the same message object, so the watch re-arms until it stops moving.
 */
class LockWatch {
  private readonly controller = new AbortController();
  private readonly message: ServiceBusReceivedMessage;
  private timer: NodeJS.Timeout | undefined;
  lost = false;

  constructor(message: ServiceBusReceivedMessage) {
    this.message = message;
    this.check();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const lockedUntil = this.message.lockedUntilUtc?.getTime();
    if (lockedUntil === undefined) return;
    const remaining = lockedUntil - Date.now();
    if (remaining > 0) {
      this.timer = setTimeout(() => this.check(), remaining);
      this.timer.unref();
      return;
    }
    this.lost = true;
    this.controller.abort(
      new OrchestratorError('LOCK_LOST', `the lock of message ${String(this.message.messageId)} expired`, {
        retryable: true,
      }),
    );
  }
}

/** Runs `fn`, turning SDK failures into `OrchestratorError`s (and an abort into the caller's reason). */
async function translated<T>(what: string, abortSignal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (abortSignal?.aborted) throw abortSignal.reason;
    throw translateError(what, e);
  }
}

function translateError(what: string, e: unknown): unknown {
  if (isOrchestratorError(e) || e instanceof TypeError || e instanceof RangeError) return e;
  const detail = describeError(e);
  const dependency = (message: string, retryable: boolean): OrchestratorError =>
    new OrchestratorError('DEPENDENCY_UNAVAILABLE', `${what} failed: ${message}`, { retryable, cause: e });
  if (isServiceBusError(e)) {
    switch (e.code) {
      case 'ServiceBusy':
      case 'ServiceTimeout':
      case 'ServiceCommunicationProblem':
      case 'GeneralError':
      case 'QuotaExceeded':
        return dependency(detail, true);
      case 'MessagingEntityNotFound':
        return dependency(`the queue does not exist (${detail})`, false);
      case 'MessagingEntityDisabled':
      case 'UnauthorizedAccess':
        return dependency(detail, false);
      case 'MessageSizeExceeded':
        return new OrchestratorError('PAYLOAD_TOO_LARGE', `${what} failed: ${detail}`, { cause: e });
      case 'MessageLockLost':
      case 'SessionLockLost':
        return new OrchestratorError('LOCK_LOST', `${what} failed: ${detail}`, { retryable: true, cause: e });
      default:
        return dependency(detail, e.retryable);
    }
  }
  const restCode = restCodeOf(e);
  const status = (e as { statusCode?: unknown } | null)?.statusCode;
  if (restCode === 'MessageEntityNotFoundError' || status === 404) {
    return dependency(`the queue does not exist (${detail})`, false);
  }
  if (status === 401 || status === 403) return dependency(detail, false);
  const code = errorCodeOf(e);
  if (code !== undefined && NETWORK_ERROR_CODES.has(code)) return dependency(detail, true);
  // Everything else from the SDK (timeouts, a closed connection, 429 and 5xx after its own retries)
  // is worth another try later.
  return dependency(detail, true);
}

function restCodeOf(e: unknown): string | undefined {
  return (e as { name?: unknown } | null)?.name === 'RestError' ? errorCodeOf(e) : undefined;
}
