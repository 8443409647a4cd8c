/** Injection token of the validated `ReceiverConfig`. */
export const RECEIVER_CONFIG = Symbol('RECEIVER_CONFIG');

/** Deliveries kept in memory; older ones are dropped. */
export const MAX_DELIVERIES = 200;

/**
 * Largest request body accepted (413 above). The raw bytes of every kept delivery stay in
 * memory for re-verification, so this times MAX_DELIVERIES bounds the memory used.
 */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** Characters of a body shown on the page and in deliveries.json. */
export const BODY_DISPLAY_CHARS = 64 * 1024;

/** `?delay_ms=` is capped here: long enough to outlast any sane webhook timeout. */
export const MAX_DELAY_MS = 60000;

/** Secrets added through the form; a bound so a stray script cannot grow the list forever. */
export const MAX_SECRETS = 50;

/**
 * Same tolerance as the `standardwebhooks` package (WEBHOOK_TOLERANCE_IN_SECONDS, which it
 * does not export): a timestamp more than 5 minutes from the receive time is refused.
 */
export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;
