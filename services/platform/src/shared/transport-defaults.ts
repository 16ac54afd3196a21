/**
 * The defaults every queue transport applies, as Service Bus does (its entity defaults and its SDK's),
 * so that the in-process, RabbitMQ and Service Bus transports behave alike when left unconfigured.
 */
export const DEFAULT_LOCK_DURATION_IN_MS = 60_000;
export const DEFAULT_MAX_DELIVERY_COUNT = 10;
/** The SDK renews a delivery's lock for this long while its handler runs (`ConsumeOptions`). */
export const DEFAULT_MAX_AUTO_LOCK_RENEWAL_DURATION_IN_MS = 300_000;
export const DEFAULT_PEEK_MAX_COUNT = 100;
/** How long a depth read from a management API is reused. */
export const DEFAULT_DEPTH_CACHE_TTL_IN_MS = 5_000;
