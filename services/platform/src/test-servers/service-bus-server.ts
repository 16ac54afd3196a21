import { randomBytes, randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import rhea from 'rhea';
import type { Connection, ConnectionOptions, Delivery, EventContext, Message, Sender } from 'rhea';

export interface StartServiceBusTestServerOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** AMQP and management (HTTP) port; 0 lets the system pick a free one. @default 0 */
  port?: number;
  /** Lock duration of queues the server creates by itself (on first attach). @default 60000 */
  lockDurationInMs?: number;
  /** `maxDeliveryCount` of queues the server creates by itself. @default 10 */
  maxDeliveryCount?: number;
  /** Largest message (or batch of messages) a sender may transfer, as on the Standard tier. @default 262144 */
  maxMessageSizeInBytes?: number;
  /**
   * Create a queue when a client first attaches to it, with the defaults above. Turn it off to
   * require queues to be created first (through the administration client's `createQueue`),
   * like a real namespace. @default true
   */
  autoCreateQueues?: boolean;
}

/** Counts of one queue, as `getQueueRuntimeProperties` reports them, plus the locked share of `active`. */
export interface ServiceBusTestQueueDepth {
  /** Available or locked (being handled), as Service Bus counts "active". */
  active: number;
  /** Of `active`, those locked by a receiver right now. */
  locked: number;
  scheduled: number;
  deferred: number;
  deadLetter: number;
}

/** What the server has seen since it started; for tests that check how a client used the protocol. */
export interface ServiceBusTestServerCounters {
  /** Transfers into queues with the batch message format (0x80013700). */
  batchedTransfers: number;
  /** Transfers into queues with the standard message format (0 = one message each). */
  singleTransfers: number;
  /** Messages accepted into queues, including scheduled ones. */
  messagesAccepted: number;
  /** Locks renewed through `com.microsoft:renew-lock`. */
  lockRenewals: number;
  /** Locks that expired before the client settled the message. */
  lockExpirations: number;
  /** HTTP requests to the management (ATOM) endpoint. */
  managementHttpRequests: number;
}

export interface RunningServiceBusTestServer {
  /**
   * `Endpoint=sb://127.0.0.1:<port>;SharedAccessKeyName=…;SharedAccessKey=…;UseDevelopmentEmulator=true`:
   * plain TCP, any key is accepted.
   */
  connectionString: string;
  host: string;
  port: number;
  /**
   * `http://127.0.0.1:<port>`: the same port also answers the administration client's ATOM requests
   * (queue runtime properties, create, get, delete), told apart from AMQP by the first byte sent.
   */
  administrationEndpoint: string;
  /** Counts of a queue; all zero for a queue that does not exist. */
  depthOf(queue: string): ServiceBusTestQueueDepth;
  /** Settings of a queue, or `undefined` when it does not exist. */
  queueSettings(queue: string): { lockDurationInMs: number; maxDeliveryCount: number } | undefined;
  /** Names of the queues that exist, in creation order. */
  queueNames(): string[];
  counters(): ServiceBusTestServerCounters;
  /** Closes every client connection and the listener. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_LOCK_DURATION_IN_MS = 60_000;
const DEFAULT_MAX_DELIVERY_COUNT = 10;
const DEFAULT_MAX_MESSAGE_SIZE_IN_BYTES = 256 * 1024;
const BATCH_MESSAGE_FORMAT = 0x80013700;
const DEAD_LETTER_SUBQUEUE = '$deadletterqueue';
const MANAGEMENT_NODE = '$management';
const CBS_NODE = '$cbs';
const LOCK_LOST_CONDITION = 'com.microsoft:message-lock-lost';
const LOCK_LOST_DESCRIPTION =
  'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.';
const API_VERSION = '2021-05';

/**
 * Starts an in-process stand-in for an Azure Service Bus namespace that the real
 * `@azure/service-bus` SDK (7.9.x) talks to, for tests: AMQP 1.0 through `rhea` on plain TCP with
 * SASL ANONYMOUS (the SDK's `UseDevelopmentEmulator=true` mode) and, on the same port, the ATOM
 * management API of `ServiceBusAdministrationClient` over plain HTTP.
 *
 * Implemented: `$cbs` put-token (any token); sender links into queues, with single and batched
 * (format 0x80013700) transfers and `max_message_size`; peek-lock receiver links with credit and
 * drain, 16-byte delivery tags as lock tokens, the `x-opt-sequence-number`, `x-opt-enqueued-time`,
 * `x-opt-locked-until` annotations and the header's delivery count (prior deliveries, as the broker
 * sends it); settlement (accepted = complete, modified = abandon with properties to modify,
 * modified + undeliverable-here = defer, rejected `com.microsoft:dead-letter` = dead-letter),
 * settled back to the client, or refused with `com.microsoft:message-lock-lost`; lock expiry,
 * redelivery and dead-lettering after `maxDeliveryCount` (reason `MaxDeliveryCountExceeded`) into
 * `<queue>/$DeadLetterQueue`, which can be received from and peeked; and the `<entity>/$management`
 * operations schedule-message, cancel-scheduled-message, renew-lock, peek-message,
 * receive-by-sequence-number and update-disposition. Scheduled messages become active at their
 * time. Over HTTP: GET (queue description with `CountDetails`), PUT (create) and DELETE of queues.
 *
 * Not implemented: sessions, topics and subscriptions, transactions, duplicate detection, message
 * expiry (time to live), auto-forwarding, partitioning, authorization (every token and key is
 * accepted), TLS, WebSockets, and persistence (state lives in memory until `close`).
 */
export async function startServiceBusTestServer(
  options: StartServiceBusTestServerOptions = {},
): Promise<RunningServiceBusTestServer> {
  const host = options.host ?? '127.0.0.1';
  const namespace = new Namespace({
    lockDurationInMs: positive(options.lockDurationInMs ?? DEFAULT_LOCK_DURATION_IN_MS, 'lockDurationInMs'),
    maxDeliveryCount: positiveInteger(options.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY_COUNT, 'maxDeliveryCount'),
    maxMessageSizeInBytes: positiveInteger(
      options.maxMessageSizeInBytes ?? DEFAULT_MAX_MESSAGE_SIZE_IN_BYTES,
      'maxMessageSizeInBytes',
    ),
    autoCreateQueues: options.autoCreateQueues ?? true,
  });
  const amqp = new AmqpFrontEnd(namespace);
  const http = createHttpServer((request, response) => {
    namespace.counters.managementHttpRequests++;
    handleManagementHttp(namespace, request, response).catch((e: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(e instanceof Error ? e.message : String(e));
    });
  });

  const sockets = new Set<Socket>();
  const listener = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    // AMQP starts with the protocol header "AMQP"; every HTTP request starts with a method name.
    socket.once('readable', () => {
      const first: Buffer | null = socket.read() as Buffer | null;
      if (first === null) {
        socket.destroy();
        return;
      }
      socket.unshift(first);
      if (first[0] === 0x41) amqp.accept(socket);
      else http.emit('connection', socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port ?? 0, host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const port = (listener.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    namespace.close();
    amqp.closeAll();
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    // Give clients a moment to see the AMQP close frames, then cut whatever is left.
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const socket of sockets) socket.destroy();
    http.close();
    await closed;
  };

  return {
    connectionString:
      `Endpoint=sb://${hostInUrl}:${port};SharedAccessKeyName=RootManageSharedAccessKey;` +
      `SharedAccessKey=test-server-key;UseDevelopmentEmulator=true`,
    host,
    port,
    administrationEndpoint: `http://${hostInUrl}:${port}`,
    depthOf: (queue) => namespace.depthOf(queue),
    queueSettings: (queue) => {
      const entity = namespace.findQueue(queue);
      return entity && { lockDurationInMs: entity.lockDurationInMs, maxDeliveryCount: entity.maxDeliveryCount };
    },
    queueNames: () => namespace.queueNames(),
    counters: () => ({ ...namespace.counters }),
    close: () => (closing ??= close()),
  };
}

function positive(value: number, name: string): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Broker state
// ---------------------------------------------------------------------------------------------

interface NamespaceSettings {
  lockDurationInMs: number;
  maxDeliveryCount: number;
  maxMessageSizeInBytes: number;
  autoCreateQueues: boolean;
}

type Properties = Record<string, unknown>;

interface StoredMessage {
  sequenceNumber: number;
  /** The message as the sender encoded it, decoded; settlement changes only `application_properties`. */
  readonly amqp: Message;
  applicationProperties: Properties;
  enqueuedAt: number;
  /** Deliveries so far (locks taken), as Service Bus counts them. */
  deliveryCount: number;
  scheduledAt?: number;
}

interface Lock {
  /** Hex of the lock token's bytes as clients send them back in management requests. */
  readonly key: string;
  readonly entity: Entity;
  readonly message: StoredMessage;
  lockedUntil: number;
  timer: NodeJS.Timeout | undefined;
  /** The transfer that carried the message, unless it was received through `$management`. */
  readonly delivery: Delivery | undefined;
}

interface Consumer {
  readonly link: Sender;
  readonly entity: Entity;
}

type Disposition =
  | { kind: 'complete' }
  | { kind: 'abandon'; properties?: Properties }
  | { kind: 'release' }
  | { kind: 'defer'; properties?: Properties }
  | { kind: 'deadLetter'; reason: string | undefined; description: string | undefined; properties?: Properties };

class NotFoundError extends Error {}

/** A queue or a dead-letter subqueue. */
class Entity {
  readonly name: string;
  readonly path: string;
  readonly lockDurationInMs: number;
  readonly maxDeliveryCount: number;
  /** Only on queues: the subqueue dead-lettered messages move to. */
  readonly deadLetterQueue: Entity | undefined;
  readonly createdAt = Date.now();
  updatedAt = this.createdAt;
  accessedAt = this.createdAt;
  readonly available: StoredMessage[] = [];
  readonly locked = new Map<string, Lock>();
  readonly scheduled: StoredMessage[] = [];
  readonly deferred = new Map<number, StoredMessage>();
  readonly consumers: Consumer[] = [];
  private readonly namespace: Namespace;
  private nextSequenceNumber = 1;
  private cursor = 0;
  private scheduleTimer: NodeJS.Timeout | undefined;
  private dispatchScheduled = false;

  constructor(
    namespace: Namespace,
    name: string,
    settings: { lockDurationInMs: number; maxDeliveryCount: number },
    isDeadLetterQueue: boolean,
  ) {
    this.namespace = namespace;
    this.name = name;
    this.path = isDeadLetterQueue ? `${name}/$DeadLetterQueue` : name;
    this.lockDurationInMs = settings.lockDurationInMs;
    // Messages in a dead-letter queue are never dead-lettered again.
    this.maxDeliveryCount = isDeadLetterQueue ? Infinity : settings.maxDeliveryCount;
    this.deadLetterQueue = isDeadLetterQueue ? undefined : new Entity(namespace, name, settings, true);
  }

  enqueue(amqp: Message, now = Date.now()): StoredMessage {
    if (amqp.message_id === undefined || amqp.message_id === null) amqp.message_id = randomUUID().replaceAll('-', '');
    const message: StoredMessage = {
      sequenceNumber: this.nextSequenceNumber++,
      amqp,
      applicationProperties: { ...(amqp.application_properties as Properties | undefined) },
      enqueuedAt: now,
      deliveryCount: 0,
    };
    const scheduledAt = timeOf(amqp.message_annotations?.['x-opt-scheduled-enqueue-time']);
    if (scheduledAt !== undefined && scheduledAt > now) {
      message.scheduledAt = scheduledAt;
      insertBy(this.scheduled, message, (m) => m.scheduledAt ?? 0);
      this.armScheduleTimer();
    } else {
      this.makeAvailable(message);
    }
    this.touch();
    return message;
  }

  /** Moves a message in from another entity (dead-lettering), with a sequence number of this one. */
  adopt(message: StoredMessage): void {
    message.sequenceNumber = this.nextSequenceNumber++;
    message.enqueuedAt = Date.now();
    this.makeAvailable(message);
    this.touch();
  }

  cancelScheduled(sequenceNumber: number): void {
    const at = this.scheduled.findIndex((m) => m.sequenceNumber === sequenceNumber);
    if (at >= 0) this.scheduled.splice(at, 1);
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.touch();
  }

  removeConsumer(link: Sender): void {
    const at = this.consumers.findIndex((c) => c.link === link);
    if (at >= 0) this.consumers.splice(at, 1);
  }

  /** Dispatches on the next turn of the event loop, once rhea has written what was sent before. */
  scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      if (!this.namespace.closed) this.dispatch();
    });
  }

  lock(message: StoredMessage, delivery: Delivery | undefined, key: string, now: number): Lock {
    const lock: Lock = {
      key,
      entity: this,
      message,
      lockedUntil: now + this.lockDurationInMs,
      timer: undefined,
      delivery,
    };
    this.locked.set(key, lock);
    this.armLockTimer(lock);
    return lock;
  }

  renew(lock: Lock): number {
    lock.lockedUntil = Date.now() + this.lockDurationInMs;
    this.armLockTimer(lock);
    return lock.lockedUntil;
  }

  /** Applies a client's settlement to a locked message. */
  settle(lock: Lock, disposition: Disposition): void {
    this.unlock(lock);
    const { message } = lock;
    switch (disposition.kind) {
      case 'complete':
        break;
      case 'abandon':
        Object.assign(message.applicationProperties, disposition.properties);
        this.returnOrDeadLetter(message);
        break;
      case 'release':
        message.deliveryCount = Math.max(0, message.deliveryCount - 1);
        this.makeAvailable(message);
        break;
      case 'defer':
        Object.assign(message.applicationProperties, disposition.properties);
        this.deferred.set(message.sequenceNumber, message);
        break;
      case 'deadLetter':
        Object.assign(message.applicationProperties, disposition.properties);
        this.deadLetter(message, disposition.reason, disposition.description);
        break;
    }
    this.touch();
    this.scheduleDispatch();
  }

  /** Takes deferred messages by sequence number, locked, as `receive-by-sequence-number` does. */
  takeDeferred(sequenceNumber: number): StoredMessage | undefined {
    const message = this.deferred.get(sequenceNumber);
    if (message) this.deferred.delete(sequenceNumber);
    return message;
  }

  peek(fromSequenceNumber: number, count: number): { message: StoredMessage; state: number }[] {
    const all = [
      ...this.available.map((message) => ({ message, state: 0 })),
      ...[...this.locked.values()].map((lock) => ({ message: lock.message, state: 0 })),
      ...[...this.deferred.values()].map((message) => ({ message, state: 1 })),
      ...this.scheduled.map((message) => ({ message, state: 2 })),
    ];
    return all
      .filter((entry) => entry.message.sequenceNumber >= fromSequenceNumber)
      .sort((a, b) => a.message.sequenceNumber - b.message.sequenceNumber)
      .slice(0, Math.max(0, count));
  }

  close(): void {
    clearTimeout(this.scheduleTimer);
    for (const lock of this.locked.values()) clearTimeout(lock.timer);
    this.deadLetterQueue?.close();
  }

  private touch(): void {
    this.updatedAt = this.accessedAt = Date.now();
  }

  private makeAvailable(message: StoredMessage): void {
    insertBy(this.available, message, (m) => m.sequenceNumber);
    this.scheduleDispatch();
  }

  private unlock(lock: Lock): void {
    clearTimeout(lock.timer);
    lock.timer = undefined;
    this.locked.delete(lock.key);
  }

  private returnOrDeadLetter(message: StoredMessage): void {
    if (message.deliveryCount >= this.maxDeliveryCount) {
      this.deadLetter(
        message,
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${this.maxDeliveryCount} delivery attempts.`,
      );
    } else {
      this.makeAvailable(message);
    }
  }

  private deadLetter(message: StoredMessage, reason: string | undefined, description: string | undefined): void {
    if (!this.deadLetterQueue) {
      // Already in a dead-letter queue: Service Bus keeps it there.
      this.makeAvailable(message);
      return;
    }
    if (reason !== undefined) message.applicationProperties.DeadLetterReason = reason;
    if (description !== undefined) message.applicationProperties.DeadLetterErrorDescription = description;
    this.deadLetterQueue.adopt(message);
  }

  private armLockTimer(lock: Lock): void {
    clearTimeout(lock.timer);
    lock.timer = setTimeout(() => this.expire(lock), Math.max(0, lock.lockedUntil - Date.now()));
    lock.timer.unref();
  }

  private expire(lock: Lock): void {
    if (this.locked.get(lock.key) !== lock) return;
    this.namespace.counters.lockExpirations++;
    this.unlock(lock);
    // Settle the transfer from our side, so a late disposition fails fast as "already settled"
    // and rhea can free the delivery instead of holding it forever.
    if (lock.delivery) settleDelivery(lock.delivery);
    this.returnOrDeadLetter(lock.message);
    this.touch();
  }

  private dispatch(): void {
    const now = Date.now();
    const budgets = new Map<Consumer, number>();
    for (const consumer of this.consumers) {
      const { link } = consumer;
      budgets.set(consumer, link.is_open() && link.sendable() ? creditOf(link) : 0);
    }
    while (this.available.length > 0) {
      const consumer = this.nextConsumerWithBudget(budgets);
      if (!consumer) return;
      const message = this.available.shift();
      if (!message) return;
      budgets.set(consumer, (budgets.get(consumer) ?? 0) - 1);
      this.deliver(consumer, message, now);
    }
  }

  private nextConsumerWithBudget(budgets: Map<Consumer, number>): Consumer | undefined {
    const count = this.consumers.length;
    for (let i = 0; i < count; i++) {
      const at = (this.cursor + i) % count;
      const consumer = this.consumers[at];
      if (consumer && (budgets.get(consumer) ?? 0) > 0) {
        this.cursor = (at + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  private deliver(consumer: Consumer, message: StoredMessage, now: number): void {
    message.deliveryCount++;
    const tag = randomBytes(16);
    // The SDK turns the tag into a lock token with .NET's GUID byte order, and sends those bytes.
    const key = dotNetGuidOrder(tag).toString('hex');
    const lockedUntil = now + this.lockDurationInMs;
    const delivery = consumer.link.send(deliveryView(message, { lockedUntil }), tag);
    const lock = this.lock(message, delivery, key, now);
    this.namespace.lockOfDelivery.set(delivery, lock);
  }

  private armScheduleTimer(): void {
    clearTimeout(this.scheduleTimer);
    const next = this.scheduled[0];
    if (next?.scheduledAt === undefined) return;
    this.scheduleTimer = setTimeout(() => this.activateDue(), Math.max(0, next.scheduledAt - Date.now()));
    this.scheduleTimer.unref();
  }

  private activateDue(): void {
    const now = Date.now();
    while (this.scheduled[0] && (this.scheduled[0].scheduledAt ?? 0) <= now) {
      const message = this.scheduled.shift();
      if (!message) break;
      message.enqueuedAt = message.scheduledAt ?? now;
      message.scheduledAt = undefined;
      this.makeAvailable(message);
    }
    this.armScheduleTimer();
  }
}

class Namespace {
  readonly settings: NamespaceSettings;
  readonly counters: ServiceBusTestServerCounters = {
    batchedTransfers: 0,
    singleTransfers: 0,
    messagesAccepted: 0,
    lockRenewals: 0,
    lockExpirations: 0,
    managementHttpRequests: 0,
  };
  readonly lockOfDelivery = new WeakMap<Delivery, Lock>();
  closed = false;
  private readonly queues = new Map<string, Entity>();

  constructor(settings: NamespaceSettings) {
    this.settings = settings;
  }

  findQueue(name: string): Entity | undefined {
    return this.queues.get(name.toLowerCase());
  }

  queueNames(): string[] {
    return [...this.queues.values()].map((q) => q.name);
  }

  createQueue(name: string, settings: { lockDurationInMs?: number; maxDeliveryCount?: number } = {}): Entity {
    if (this.findQueue(name)) throw new Error(`queue ${name} already exists`);
    const queue = new Entity(
      this,
      name,
      {
        lockDurationInMs: settings.lockDurationInMs ?? this.settings.lockDurationInMs,
        maxDeliveryCount: settings.maxDeliveryCount ?? this.settings.maxDeliveryCount,
      },
      false,
    );
    this.queues.set(name.toLowerCase(), queue);
    return queue;
  }

  deleteQueue(name: string): boolean {
    const queue = this.findQueue(name);
    if (!queue) return false;
    queue.close();
    this.queues.delete(name.toLowerCase());
    return true;
  }

  /** The entity an AMQP address names (`q`, `q/$DeadLetterQueue`), created on demand if allowed. */
  resolve(path: string, create: boolean): Entity {
    const parts = path.split('/');
    const isDeadLetter = parts.length > 1 && parts[parts.length - 1]?.toLowerCase() === DEAD_LETTER_SUBQUEUE;
    const name = (isDeadLetter ? parts.slice(0, -1) : parts).join('/');
    if (name.length === 0) throw new NotFoundError(`The messaging entity '${path}' could not be found.`);
    let queue = this.findQueue(name);
    if (!queue) {
      if (!create || !this.settings.autoCreateQueues) {
        throw new NotFoundError(`The messaging entity '${path}' could not be found.`);
      }
      queue = this.createQueue(name);
    }
    return isDeadLetter && queue.deadLetterQueue ? queue.deadLetterQueue : queue;
  }

  depthOf(name: string): ServiceBusTestQueueDepth {
    const queue = this.findQueue(name);
    if (!queue) return { active: 0, locked: 0, scheduled: 0, deferred: 0, deadLetter: 0 };
    const dlq = queue.deadLetterQueue;
    return {
      active: queue.available.length + queue.locked.size,
      locked: queue.locked.size,
      scheduled: queue.scheduled.length,
      deferred: queue.deferred.size,
      deadLetter: dlq ? dlq.available.length + dlq.locked.size + dlq.deferred.size : 0,
    };
  }

  close(): void {
    this.closed = true;
    for (const queue of this.queues.values()) queue.close();
  }
}

// ---------------------------------------------------------------------------------------------
// AMQP
// ---------------------------------------------------------------------------------------------

/** The `rhea` side: links, transfers, dispositions and request/response nodes. */
class AmqpFrontEnd {
  private readonly namespace: Namespace;
  private readonly container = rhea.create_container({ id: `service-bus-test-server-${randomUUID()}` });
  private readonly connections = new Set<Connection>();
  private readonly consumers = new WeakMap<Sender, Consumer>();
  /** Links on which `$cbs` and `$management` responses go, per connection, by their target address. */
  private readonly replyLinks = new WeakMap<Connection, Map<string, Sender>>();

  constructor(namespace: Namespace) {
    this.namespace = namespace;
    const c = this.container;
    c.on('connection_open', (ctx: EventContext) => this.connections.add(ctx.connection));
    c.on('connection_close', (ctx: EventContext) => this.forget(ctx.connection));
    c.on('disconnected', (ctx: EventContext) => this.forget(ctx.connection));
    c.on('sender_open', (ctx: EventContext) => this.onSenderOpen(ctx));
    c.on('receiver_open', (ctx: EventContext) => this.onReceiverOpen(ctx));
    c.on('sender_close', (ctx: EventContext) => this.forgetLink(ctx.sender));
    c.on('sender_flow', (ctx: EventContext) => this.consumerOf(ctx.sender)?.entity.scheduleDispatch());
    // Honour a drain by giving up the remaining credit rather than sending more: the SDK drains
    // when it stops receiving, and anything sent then would reach a handler that is shutting down.
    c.on('sender_draining', (ctx: EventContext) => {
      const sender = ctx.sender;
      if (sender && creditOf(sender) > 0) sender.set_drained(true);
    });
    c.on('message', (ctx: EventContext) => this.onMessage(ctx));
    c.on('accepted', (ctx: EventContext) => this.onOutcome(ctx, () => ({ kind: 'complete' })));
    c.on('released', (ctx: EventContext) => this.onOutcome(ctx, () => ({ kind: 'release' })));
    c.on('modified', (ctx: EventContext) =>
      this.onOutcome(ctx, (state) => {
        const properties = state?.message_annotations as Properties | undefined;
        return state?.undeliverable_here ? { kind: 'defer', properties } : { kind: 'abandon', properties };
      }),
    );
    c.on('rejected', (ctx: EventContext) =>
      this.onOutcome(ctx, (state) => {
        const error = state?.error as { condition?: string; info?: Properties } | undefined;
        const { DeadLetterReason, DeadLetterErrorDescription, ...properties } = error?.info ?? {};
        return {
          kind: 'deadLetter',
          reason: stringOrUndefined(DeadLetterReason),
          description: stringOrUndefined(DeadLetterErrorDescription),
          properties,
        };
      }),
    );
    // Without listeners, rhea rethrows link and connection errors from the container.
    c.on('error', () => undefined);
    c.on('connection_error', () => undefined);
    c.on('protocol_error', () => undefined);
  }

  accept(socket: Socket): void {
    const connection = this.container.create_connection({
      container_id: this.container.id,
      sender_options: { treat_modified_as_released: false, autosettle: true },
      receiver_options: { autoaccept: false, max_message_size: this.namespace.settings.maxMessageSizeInBytes },
    } as unknown as ConnectionOptions);
    (connection as unknown as { accept(socket: Socket): void }).accept(socket);
  }

  closeAll(): void {
    for (const connection of this.connections) {
      try {
        connection.close();
      } catch {
        // Already gone.
      }
    }
    this.connections.clear();
  }

  private forget(connection: Connection | undefined): void {
    if (!connection) return;
    this.connections.delete(connection);
    this.replyLinks.delete(connection);
  }

  private forgetLink(sender: Sender | undefined): void {
    if (!sender) return;
    const consumer = this.consumers.get(sender);
    if (consumer) {
      consumer.entity.removeConsumer(sender);
      this.consumers.delete(sender);
    }
  }

  private consumerOf(sender: Sender | undefined): Consumer | undefined {
    return sender ? this.consumers.get(sender) : undefined;
  }

  /** A client's receiver link: a consumer of an entity, or where `$cbs`/`$management` replies go. */
  private onSenderOpen(ctx: EventContext): void {
    const sender = ctx.sender;
    if (!sender) return;
    const source = addressOf(sender.source);
    const target = addressOf(sender.target);
    sender.set_source({ address: source });
    sender.set_target({ address: target });
    if (source === CBS_NODE || isManagementAddress(source)) {
      let links = this.replyLinks.get(ctx.connection);
      if (!links) this.replyLinks.set(ctx.connection, (links = new Map<string, Sender>()));
      // Clients name the reply address in `reply_to`: the link's target address, or (the SDK's
      // request-response links, which attach with no target) the link's name.
      if (target) links.set(target, sender);
      links.set(sender.name, sender);
      return;
    }
    try {
      const entity = this.namespace.resolve(source, true);
      const consumer: Consumer = { link: sender, entity };
      this.consumers.set(sender, consumer);
      entity.addConsumer(consumer);
    } catch (e) {
      sender.close({ condition: 'amqp:not-found', description: describe(e) });
    }
  }

  /** A client's sender link: into an entity, or requests to `$cbs`/`$management`. */
  private onReceiverOpen(ctx: EventContext): void {
    const receiver = ctx.receiver;
    if (!receiver) return;
    const target = addressOf(receiver.target);
    receiver.set_target({ address: target });
    receiver.set_source({ address: addressOf(receiver.source) });
    if (target === CBS_NODE || isManagementAddress(target)) return;
    try {
      const entity = this.namespace.resolve(target, true);
      if (entity.deadLetterQueue === undefined) {
        receiver.close({ condition: 'amqp:not-allowed', description: `Cannot send to '${target}'.` });
      }
    } catch (e) {
      receiver.close({ condition: 'amqp:not-found', description: describe(e) });
    }
  }

  private onMessage(ctx: EventContext): void {
    const receiver = ctx.receiver;
    const delivery = ctx.delivery;
    if (!receiver || !delivery) return;
    const target = addressOf(receiver.target);
    try {
      if (target === CBS_NODE) {
        delivery.accept();
        this.answerCbs(ctx);
      } else if (isManagementAddress(target)) {
        delivery.accept();
        this.answerManagement(ctx, target.slice(0, -(MANAGEMENT_NODE.length + 1)));
      } else {
        this.acceptTransfer(ctx, target);
      }
    } catch (e) {
      delivery.reject({ condition: 'amqp:internal-error', description: describe(e) });
    }
  }

  private acceptTransfer(ctx: EventContext, target: string): void {
    const delivery = ctx.delivery;
    if (!delivery) return;
    let entity: Entity;
    try {
      entity = this.namespace.resolve(target, false);
    } catch (e) {
      delivery.reject({ condition: 'amqp:not-found', description: describe(e) });
      return;
    }
    const { maxMessageSizeInBytes } = this.namespace.settings;
    const format = (ctx as { format?: number }).format ?? 0;
    let messages: Message[];
    let size: number;
    if (format === BATCH_MESSAGE_FORMAT) {
      const data = ctx.message as unknown as Buffer;
      size = data.length;
      const envelope = rhea.message.decode(data);
      const body = envelope.body as { content?: unknown; multiple?: boolean } | undefined;
      const sections = body?.multiple ? (body.content as Buffer[]) : body?.content ? [body.content as Buffer] : [];
      messages = sections.map(decodeMessage);
      this.namespace.counters.batchedTransfers++;
    } else if (format === 0 && ctx.message) {
      messages = [ctx.message];
      size = rhea.message.encode(ctx.message).length;
      this.namespace.counters.singleTransfers++;
    } else {
      delivery.reject({ condition: 'amqp:not-implemented', description: `Unsupported message format ${format}.` });
      return;
    }
    if (size > maxMessageSizeInBytes) {
      delivery.reject({
        condition: 'amqp:link:message-size-exceeded',
        description: `The received message (size ${size} bytes) exceeds the limit (${maxMessageSizeInBytes} bytes).`,
      });
      return;
    }
    const now = Date.now();
    for (const message of messages) entity.enqueue(message, now);
    this.namespace.counters.messagesAccepted += messages.length;
    delivery.accept();
  }

  /** A client's disposition of a message it received on a link. */
  private onOutcome(ctx: EventContext, toDisposition: (state: Properties | undefined) => Disposition): void {
    const delivery = ctx.delivery;
    if (!delivery || !this.consumerOf(ctx.sender)) return; // e.g. the client accepting a response
    const lock = this.namespace.lockOfDelivery.get(delivery);
    if (!lock || lock.entity.locked.get(lock.key) !== lock) {
      settleDelivery(delivery, { condition: LOCK_LOST_CONDITION, description: LOCK_LOST_DESCRIPTION });
      return;
    }
    lock.entity.settle(lock, toDisposition(delivery.remote_state));
    settleDelivery(delivery);
  }

  private answerCbs(ctx: EventContext): void {
    const request = ctx.message;
    if (!request) return;
    const operation = request.application_properties?.operation as unknown;
    if (operation === 'put-token') this.reply(ctx, request, 202, 'Accepted');
    else this.reply(ctx, request, 400, `Unsupported $cbs operation ${String(operation)}.`);
  }

  private answerManagement(ctx: EventContext, entityPath: string): void {
    const request = ctx.message;
    if (!request) return;
    const operation = request.application_properties?.operation as unknown;
    const body = (request.body ?? {}) as Properties;
    let entity: Entity;
    try {
      // A management request is a first use too (the SDK schedules through it before any sender
      // link exists): with autoCreateQueues, it creates the queue like an attach does.
      entity = this.namespace.resolve(entityPath, true);
    } catch (e) {
      this.reply(ctx, request, 404, describe(e), undefined, 'amqp:not-found');
      return;
    }
    const now = Date.now();
    switch (operation) {
      case 'com.microsoft:schedule-message': {
        const entries = (body.messages ?? []) as { message: Buffer }[];
        const sequenceNumbers = entries.map((entry) => {
          const stored = entity.enqueue(decodeMessage(entry.message), now);
          return longBytes(stored.sequenceNumber);
        });
        this.namespace.counters.messagesAccepted += entries.length;
        this.reply(ctx, request, 200, 'OK', { 'sequence-numbers': sequenceNumbers });
        return;
      }
      case 'com.microsoft:cancel-scheduled-message': {
        for (const n of asArray(body['sequence-numbers'])) entity.cancelScheduled(toNumber(n));
        this.reply(ctx, request, 200, 'OK');
        return;
      }
      case 'com.microsoft:renew-lock': {
        const expirations: Date[] = [];
        for (const token of asArray(body['lock-tokens'])) {
          const lock = entity.locked.get(lockKeyOf(token));
          if (!lock) {
            this.reply(ctx, request, 410, LOCK_LOST_DESCRIPTION, undefined, LOCK_LOST_CONDITION);
            return;
          }
          expirations.push(new Date(entity.renew(lock)));
          this.namespace.counters.lockRenewals++;
        }
        this.reply(ctx, request, 200, 'OK', { expirations });
        return;
      }
      case 'com.microsoft:peek-message': {
        const from = toNumber(body['from-sequence-number'] ?? 1);
        const count = toNumber(body['message-count'] ?? 1);
        const peeked = entity.peek(from, count);
        if (peeked.length === 0) {
          this.reply(ctx, request, 204, 'No Content');
          return;
        }
        const messages = peeked.map(({ message, state }) => ({
          message: rhea.message.encode(peekView(message, state)),
        }));
        this.reply(ctx, request, 200, 'OK', { messages });
        return;
      }
      case 'com.microsoft:receive-by-sequence-number': {
        const messages: { message: Buffer; 'lock-token': unknown }[] = [];
        for (const n of asArray(body['sequence-numbers'])) {
          const message = entity.takeDeferred(toNumber(n));
          if (!message) {
            this.reply(
              ctx,
              request,
              404,
              `Message ${toNumber(n)} not found.`,
              undefined,
              'com.microsoft:message-not-found',
            );
            return;
          }
          message.deliveryCount++;
          const token = randomBytes(16);
          const lock = entity.lock(message, undefined, token.toString('hex'), now);
          messages.push({
            message: rhea.message.encode(deliveryView(message, { lockedUntil: lock.lockedUntil })),
            'lock-token': rhea.types.wrap_uuid(token),
          });
        }
        this.reply(ctx, request, 200, 'OK', { messages });
        return;
      }
      case 'com.microsoft:update-disposition': {
        const status = body['disposition-status'];
        const properties = body['properties-to-modify'] as Properties | undefined;
        const disposition: Disposition | undefined =
          status === 'completed'
            ? { kind: 'complete' }
            : status === 'abandoned'
              ? { kind: 'abandon', properties }
              : status === 'defered'
                ? { kind: 'defer', properties }
                : status === 'suspended'
                  ? {
                      kind: 'deadLetter',
                      reason: stringOrUndefined(body['deadletter-reason']),
                      description: stringOrUndefined(body['deadletter-description']),
                      properties,
                    }
                  : undefined;
        if (!disposition) {
          this.reply(ctx, request, 400, `Unknown disposition status ${String(status)}.`);
          return;
        }
        for (const token of asArray(body['lock-tokens'])) {
          const lock = entity.locked.get(lockKeyOf(token));
          if (!lock) {
            this.reply(ctx, request, 410, LOCK_LOST_DESCRIPTION, undefined, LOCK_LOST_CONDITION);
            return;
          }
          entity.settle(lock, disposition);
          if (lock.delivery && !lock.delivery.settled) settleDelivery(lock.delivery);
        }
        this.reply(ctx, request, 200, 'OK');
        return;
      }
      default:
        this.reply(ctx, request, 501, `Unsupported management operation ${String(operation)}.`);
    }
  }

  private reply(
    ctx: EventContext,
    request: Message,
    statusCode: number,
    description: string,
    body?: Properties,
    condition?: string,
  ): void {
    const link = this.replyLinks.get(ctx.connection)?.get(String(request.reply_to));
    if (!link || !link.is_open()) return;
    link.send({
      body: undefined,
      correlation_id: request.message_id,
      // `$cbs` clients read the dashed names, `$management` clients the camel-cased ones.
      application_properties: {
        'status-code': statusCode,
        'status-description': description,
        statusCode,
        statusDescription: description,
        ...(condition !== undefined && { errorCondition: condition, 'error-condition': condition }),
      },
      ...(body !== undefined && { body }),
    });
  }
}

/** Settles a transfer we sent, optionally refusing the client's outcome. */
function settleDelivery(delivery: Delivery, error?: { condition: string; description: string }): void {
  if (!delivery.link.is_open()) return;
  // `accepted` confirms whatever the client decided (complete, abandon, dead-letter); a state-less
  // disposition would make the client's rhea log "unrecognised outcome".
  delivery.update(true, error ? rejectedOutcome(error) : acceptedOutcome());
  // The client settles silently once we have (receiver-settle-mode "second"), so mark it settled
  // on its behalf, or rhea would keep the delivery in the session's buffer forever.
  (delivery as { remote_settled: boolean }).remote_settled = true;
}

/** The message as transferred to a receiver: the header carries prior deliveries, like the broker's. */
function deliveryView(message: StoredMessage, lock: { lockedUntil: number }): Message {
  return {
    ...message.amqp,
    delivery_count: message.deliveryCount - 1,
    application_properties: message.applicationProperties,
    message_annotations: {
      ...message.amqp.message_annotations,
      'x-opt-sequence-number': rhea.types.wrap_long(message.sequenceNumber),
      'x-opt-enqueued-time': rhea.types.wrap_timestamp(message.enqueuedAt),
      'x-opt-locked-until': rhea.types.wrap_timestamp(lock.lockedUntil),
    },
  };
}

/** The message as peeked: the header carries the deliveries made so far. */
function peekView(message: StoredMessage, state: number): Message {
  return {
    ...message.amqp,
    delivery_count: message.deliveryCount,
    application_properties: message.applicationProperties,
    message_annotations: {
      ...message.amqp.message_annotations,
      'x-opt-sequence-number': rhea.types.wrap_long(message.sequenceNumber),
      'x-opt-enqueued-time': rhea.types.wrap_timestamp(message.enqueuedAt),
      ...(state !== 0 && { 'x-opt-message-state': rhea.types.wrap_int(state) }),
    },
  };
}

function creditOf(sender: Sender): number {
  return (sender as unknown as { credit: number }).credit;
}

function decodeMessage(encoded: Buffer): Message {
  return rhea.message.decode(encoded) as unknown as Message;
}

/** The `accepted` outcome, built as rhea builds it (its typings leave the builders out). */
function acceptedOutcome(): unknown {
  return (rhea.message as unknown as { accepted(): { described(): unknown } }).accepted().described();
}

/** rhea builds outcomes with `message.rejected`, which its typings leave out. */
function rejectedOutcome(error: { condition: string; description: string }): unknown {
  const outcomes = rhea.message as unknown as { rejected(fields: object): { described(): unknown } };
  return outcomes.rejected({ error }).described();
}

function addressOf(terminus: { address?: unknown } | undefined): string {
  const address = typeof terminus?.address === 'string' ? terminus.address : '';
  // Clients may use absolute addresses (amqps://host/queue); the entity path is what follows the host.
  return address.replace(/^[a-z]+:\/\/[^/]*\//i, '');
}

function isManagementAddress(address: string): boolean {
  return address.endsWith(`/${MANAGEMENT_NODE}`);
}

function dotNetGuidOrder(bytes: Buffer): Buffer {
  const b = [...bytes];
  return Buffer.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.slice(8)] as number[]);
}

function lockKeyOf(token: unknown): string {
  if (Buffer.isBuffer(token)) return token.toString('hex');
  if (typeof token === 'string') return token.replaceAll('-', '').toLowerCase();
  return '';
}

function longBytes(n: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64BE(BigInt(n));
  return bytes;
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE());
  if (typeof value === 'bigint') return Number(value);
  return Number(value);
}

function asArray(value: unknown): unknown[] {
  if (Array.isArray(value)) return value as unknown[];
  return value === undefined || value === null ? [] : [value];
}

function timeOf(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  return undefined;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Inserts keeping `items` sorted by `key`, after items with an equal key. */
function insertBy<T>(items: T[], item: T, key: (t: T) => number): void {
  const k = key(item);
  let low = 0;
  let high = items.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    const at = items[mid];
    if (at !== undefined && key(at) <= k) low = mid + 1;
    else high = mid;
  }
  items.splice(low, 0, item);
}

// ---------------------------------------------------------------------------------------------
// Management over HTTP (ATOM), as ServiceBusAdministrationClient speaks it
// ---------------------------------------------------------------------------------------------

async function handleManagementHttp(
  namespace: Namespace,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const name = decodeURIComponent(url.pathname.replace(/^\/+/, ''));
  const body = await readBody(request);
  const self = `https://${request.headers.host ?? 'localhost'}/${encodeURI(name)}?api-version=${API_VERSION}`;
  const send = (status: number, xml: string): void => {
    response.writeHead(status, { 'content-type': 'application/atom+xml;type=entry;charset=utf-8' });
    response.end(xml);
  };
  if (name.length === 0 || name.startsWith('$')) {
    send(200, emptyFeed(self));
    return;
  }
  switch (request.method) {
    case 'GET': {
      const queue = namespace.findQueue(name);
      // Service Bus answers a missing entity with 200 and an empty feed, which the SDK maps to
      // MessageEntityNotFoundError.
      send(200, queue ? queueEntry(namespace, queue, self) : emptyFeed(self));
      return;
    }
    case 'PUT': {
      if (namespace.findQueue(name)) {
        send(409, errorXml(409, `The messaging entity '${name}' already exists.`));
        return;
      }
      const lockDuration = /<LockDuration>([^<]+)<\/LockDuration>/.exec(body)?.[1];
      const maxDeliveryCount = /<MaxDeliveryCount>(\d+)<\/MaxDeliveryCount>/.exec(body)?.[1];
      const settings: { lockDurationInMs?: number; maxDeliveryCount?: number } = {};
      if (lockDuration !== undefined) settings.lockDurationInMs = parseDuration(lockDuration);
      if (maxDeliveryCount !== undefined) settings.maxDeliveryCount = Number(maxDeliveryCount);
      if (settings.lockDurationInMs !== undefined && !(settings.lockDurationInMs > 0)) {
        send(400, errorXml(400, `Invalid LockDuration '${lockDuration}'.`));
        return;
      }
      const queue = namespace.createQueue(name, settings);
      send(201, queueEntry(namespace, queue, self));
      return;
    }
    case 'DELETE': {
      if (!namespace.deleteQueue(name)) {
        send(404, errorXml(404, `The messaging entity '${name}' could not be found.`));
        return;
      }
      send(200, '');
      return;
    }
    default:
      send(405, errorXml(405, `Method ${request.method} is not supported.`));
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function emptyFeed(self: string): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">' +
    `<title type="text">Publicly Listed Services</title><id>${escapeXml(self)}</id>` +
    `<updated>${new Date().toISOString()}</updated><generator>Service Bus test server</generator></feed>`
  );
}

function errorXml(code: number, detail: string): string {
  return `<Error><Code>${code}</Code><Detail>${escapeXml(detail)}</Detail></Error>`;
}

function queueEntry(namespace: Namespace, queue: Entity, self: string): string {
  const depth = namespace.depthOf(queue.name);
  const total = depth.active + depth.scheduled + depth.deferred + depth.deadLetter;
  const iso = (ms: number): string => new Date(ms).toISOString();
  return (
    '<?xml version="1.0" encoding="utf-8"?><entry xmlns="http://www.w3.org/2005/Atom">' +
    `<id>${escapeXml(self)}</id><title type="text">${escapeXml(queue.name)}</title>` +
    `<published>${iso(queue.createdAt)}</published><updated>${iso(queue.updatedAt)}</updated>` +
    '<author><name>test-server</name></author>' +
    `<link rel="self" href="${escapeXml(self)}"/>` +
    '<content type="application/xml">' +
    '<QueueDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" ' +
    'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">' +
    `<LockDuration>${formatDuration(queue.lockDurationInMs)}</LockDuration>` +
    '<MaxSizeInMegabytes>1024</MaxSizeInMegabytes>' +
    '<RequiresDuplicateDetection>false</RequiresDuplicateDetection>' +
    '<RequiresSession>false</RequiresSession>' +
    '<DefaultMessageTimeToLive>P10675199DT2H48M5.4775807S</DefaultMessageTimeToLive>' +
    '<DeadLetteringOnMessageExpiration>false</DeadLetteringOnMessageExpiration>' +
    '<DuplicateDetectionHistoryTimeWindow>PT10M</DuplicateDetectionHistoryTimeWindow>' +
    `<MaxDeliveryCount>${queue.maxDeliveryCount}</MaxDeliveryCount>` +
    '<EnableBatchedOperations>true</EnableBatchedOperations>' +
    '<SizeInBytes>0</SizeInBytes>' +
    `<MessageCount>${total}</MessageCount>` +
    '<IsAnonymousAccessible>false</IsAnonymousAccessible>' +
    '<Status>Active</Status>' +
    `<CreatedAt>${iso(queue.createdAt)}</CreatedAt>` +
    `<UpdatedAt>${iso(queue.updatedAt)}</UpdatedAt>` +
    `<AccessedAt>${iso(queue.accessedAt)}</AccessedAt>` +
    '<SupportOrdering>true</SupportOrdering>' +
    '<CountDetails xmlns:d2p1="http://schemas.microsoft.com/netservices/2011/06/servicebus">' +
    `<d2p1:ActiveMessageCount>${depth.active}</d2p1:ActiveMessageCount>` +
    `<d2p1:DeadLetterMessageCount>${depth.deadLetter}</d2p1:DeadLetterMessageCount>` +
    `<d2p1:ScheduledMessageCount>${depth.scheduled}</d2p1:ScheduledMessageCount>` +
    '<d2p1:TransferMessageCount>0</d2p1:TransferMessageCount>' +
    '<d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount>' +
    '</CountDetails>' +
    '<AutoDeleteOnIdle>P10675199DT2H48M5.4775807S</AutoDeleteOnIdle>' +
    '<EnablePartitioning>false</EnablePartitioning>' +
    '<EntityAvailabilityStatus>Available</EntityAvailabilityStatus>' +
    '<EnableExpress>false</EnableExpress>' +
    `<MaxMessageSizeInKilobytes>${Math.floor(namespace.settings.maxMessageSizeInBytes / 1024)}</MaxMessageSizeInKilobytes>` +
    '</QueueDescription></content></entry>'
  );
}

function escapeXml(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** `PT1M`, `PT1.5S`, `P1DT2H`… (the ISO 8601 durations of the ATOM API) in milliseconds. */
function parseDuration(iso: string): number {
  const m = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(
    iso.trim(),
  );
  if (!m) return NaN;
  const [, d, h, min, s] = m.map((part) => Number(part ?? 0));
  return Math.round((((d ?? 0) * 24 + (h ?? 0)) * 60 + (min ?? 0)) * 60_000 + (s ?? 0) * 1000);
}

function formatDuration(ms: number): string {
  return `PT${Number((ms / 1000).toFixed(3))}S`;
}
