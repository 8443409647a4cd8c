import { BODY_DISPLAY_CHARS } from './receiver.constants';
import { Verification, WebhookHeaders } from './verify-delivery';

/** One request received on a webhook path, as kept in memory. */
export interface Delivery {
  /** Receiver-local sequence number (restarts with the process). */
  id: number;
  receivedAt: Date;
  path: string;
  /** The query string without `?`, or ''. */
  query: string;
  headers: WebhookHeaders & { 'content-type'?: string };
  /** The bytes as received, kept so the delivery can be verified again later. */
  rawBody: Buffer;
  body: FormattedBody;
  /** The Standard Webhooks event `type` when the body is JSON and has one. */
  type: string | null;
  /** What we answered (or will answer after delayMs). */
  status: number;
  delayMs: number;
  verification: Verification;
}

export interface FormattedBody {
  text: string;
  json: boolean;
  truncated: boolean;
  bytes: number;
}

/** Pretty JSON when the body parses, else the text as received; cut at BODY_DISPLAY_CHARS. */
export function formatBody(raw: Buffer): FormattedBody & { parsed: unknown } {
  const text = raw.toString('utf8');
  let parsed: unknown;
  let json = false;
  let shown = text;
  if (text.trim() !== '') {
    try {
      parsed = JSON.parse(text);
      shown = JSON.stringify(parsed, null, 2);
      json = true;
    } catch {
      // Not JSON: shown as text.
    }
  }
  const truncated = shown.length > BODY_DISPLAY_CHARS;
  return {
    text: truncated ? shown.slice(0, BODY_DISPLAY_CHARS) : shown,
    json,
    truncated,
    bytes: raw.length,
    parsed,
  };
}

/** `type` of a Standard Webhooks payload (`alert.created`, …), if there is one. */
export function eventType(parsed: unknown): string | null {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const type = (parsed as { type?: unknown }).type;
  return typeof type === 'string' ? type : null;
}

/** The shape of a delivery in `GET /deliveries.json`. */
export interface DeliveryResponse {
  id: number;
  received_at: string;
  path: string;
  query: string;
  headers: Delivery['headers'];
  type: string | null;
  body: string;
  body_json: boolean;
  body_truncated: boolean;
  body_bytes: number;
  status: number;
  delay_ms: number;
  verification: Verification;
}

export function toDeliveryResponse(delivery: Delivery): DeliveryResponse {
  return {
    id: delivery.id,
    received_at: delivery.receivedAt.toISOString(),
    path: delivery.path,
    query: delivery.query,
    headers: delivery.headers,
    type: delivery.type,
    body: delivery.body.text,
    body_json: delivery.body.json,
    body_truncated: delivery.body.truncated,
    body_bytes: delivery.body.bytes,
    status: delivery.status,
    delay_ms: delivery.delayMs,
    verification: delivery.verification,
  };
}
