import { isWebhookSecret, parseSecretList, ReceiverConfig } from '@app/config';
import { Inject, Injectable } from '@nestjs/common';
import { Webhook } from 'standardwebhooks';
import { Delivery, eventType, formatBody } from './delivery';
import { MAX_DELIVERIES, MAX_SECRETS, RECEIVER_CONFIG } from './receiver.constants';
import { verifyDelivery } from './verify-delivery';

export interface StoredSecret {
  value: string;
  source: 'env' | 'form';
}

/** What the controller hands over for one received request. */
export type ReceivedRequest = Pick<
  Delivery,
  'receivedAt' | 'path' | 'query' | 'headers' | 'rawBody' | 'status' | 'delayMs'
>;

export class InvalidSecretError extends Error {}

/**
 * The receiver's whole state, in memory: the last {@link MAX_DELIVERIES} deliveries
 * (newest first) and the signing secrets (RECEIVER_SECRETS, then those added on the page).
 * A restart forgets both, which is what a local test tool wants.
 */
@Injectable()
export class DeliveryStoreService {
  private deliveries: Delivery[] = [];
  private nextId = 1;
  private readonly secretList: StoredSecret[] = [];

  constructor(@Inject(RECEIVER_CONFIG) config: ReceiverConfig) {
    for (const value of config.secrets) {
      if (!this.secretList.some((s) => s.value === value)) {
        this.secretList.push({ value, source: 'env' });
      }
    }
  }

  record(request: ReceivedRequest): Delivery {
    const body = formatBody(request.rawBody);
    const delivery: Delivery = {
      ...request,
      id: this.nextId++,
      body: { text: body.text, json: body.json, truncated: body.truncated, bytes: body.bytes },
      type: eventType(body.parsed),
      verification: verifyDelivery(this.secretValues(), request),
    };
    this.deliveries.unshift(delivery);
    if (this.deliveries.length > MAX_DELIVERIES) this.deliveries.length = MAX_DELIVERIES;
    return delivery;
  }

  /** Newest first. */
  list(): readonly Delivery[] {
    return this.deliveries;
  }

  clear(): void {
    this.deliveries = [];
  }

  secrets(): readonly StoredSecret[] {
    return this.secretList;
  }

  /**
   * Adds secrets (a comma- or space-separated list, like RECEIVER_SECRETS) and verifies
   * every stored delivery again, so earlier "no secret" or "unknown secret" verdicts
   * reflect the new list. Returns how many secrets were new.
   */
  addSecrets(input: string): number {
    const values = parseSecretList(input);
    if (values.length === 0) throw new InvalidSecretError('no secret given');
    for (const value of values) {
      if (!isWebhookSecret(value) || !constructs(value)) {
        throw new InvalidSecretError('a secret must be whsec_ followed by padded base64');
      }
    }
    const fresh = [...new Set(values)].filter((v) => !this.secretList.some((s) => s.value === v));
    if (this.secretList.length + fresh.length > MAX_SECRETS) {
      throw new InvalidSecretError(`at most ${MAX_SECRETS} secrets`);
    }
    if (fresh.length === 0) return 0;
    this.secretList.push(...fresh.map((value) => ({ value, source: 'form' as const })));
    const secrets = this.secretValues();
    for (const delivery of this.deliveries) {
      delivery.verification = verifyDelivery(secrets, delivery);
    }
    return fresh.length;
  }

  private secretValues(): string[] {
    return this.secretList.map((s) => s.value);
  }
}

function constructs(secret: string): boolean {
  try {
    new Webhook(secret);
    return true;
  } catch {
    return false;
  }
}
