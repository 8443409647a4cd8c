import { keyId } from '@app/webhooks/signature';
import { createHash, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { NO_MATCH, verifyDelivery, WebhookHeaders } from './verify-delivery';

const secret = (): string => `whsec_${randomBytes(24).toString('base64')}`;
const A = secret();
const B = secret();
const BODY = Buffer.from('{"type":"alert.created","timestamp":"2026-01-01T00:00:00Z","data":{}}');

/** Signed as our sender signs: with `webhook-key-ids` naming the secrets. */
function signedBy(secrets: string[], at: Date, body = BODY, id = 'msg_1'): WebhookHeaders {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(id, at, body)).join(' '),
    'webhook-key-ids': secrets.map(keyId).join(' '),
  };
}

describe('verifyDelivery', () => {
  const now = new Date();

  it('says no secret configured when there is none', () => {
    expect(
      verifyDelivery([], { headers: signedBy([A], now), rawBody: BODY, receivedAt: now }),
    ).toEqual({
      result: 'no_secret',
      reason: 'no secret configured',
    });
  });

  it('names the secret that signed the message', () => {
    const message = { headers: signedBy([B], now), rawBody: BODY, receivedAt: now };
    expect(verifyDelivery([A, B], message)).toEqual({ result: 'verified', secret_index: 1 });
  });

  it('accepts any one of several signatures (secret rotation)', () => {
    const message = { headers: signedBy([secret(), A], now), rawBody: BODY, receivedAt: now };
    expect(verifyDelivery([A], message)).toEqual({ result: 'verified', secret_index: 0 });
  });

  it('tells a changed message signed by a known secret (signature mismatch) from an unknown secret', () => {
    const tampered = Buffer.from(BODY.toString().replace('created', 'resolved'));
    expect(
      verifyDelivery([B, A], { headers: signedBy([A], now), rawBody: tampered, receivedAt: now }),
    ).toEqual({ result: 'invalid', reason: 'signature mismatch', secret_index: 1 });
    expect(
      verifyDelivery([B], { headers: signedBy([A], now), rawBody: BODY, receivedAt: now }),
    ).toEqual({ result: 'invalid', reason: 'unknown secret', key_ids: [keyId(A)] });
    // A rotation's two signatures, neither secret known here: both key ids named.
    const C = secret();
    expect(
      verifyDelivery([B], { headers: signedBy([A, C], now), rawBody: BODY, receivedAt: now }),
    ).toEqual({ result: 'invalid', reason: 'unknown secret', key_ids: [keyId(A), keyId(C)] });
  });

  it('names both causes when the sender does not say which key signed', () => {
    const { 'webhook-key-ids': _omitted, ...headers } = signedBy([A], now);
    expect(verifyDelivery([B], { headers, rawBody: BODY, receivedAt: now })).toEqual({
      result: 'invalid',
      reason: NO_MATCH,
    });
    const garbage = { ...headers, 'webhook-key-ids': 'not-a-key-id <b>' };
    expect(verifyDelivery([B], { headers: garbage, rawBody: BODY, receivedAt: now })).toEqual({
      result: 'invalid',
      reason: NO_MATCH,
    });
  });

  it('key ids are the first 8 hex digits of SHA-256 of the whsec_ secret, prefix or not', () => {
    expect(keyId('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(
      createHash('sha256')
        .update('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')
        .digest('hex')
        .slice(0, 8),
    );
    expect(keyId('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(
      keyId('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
    );
  });

  it('names missing headers and a malformed timestamp', () => {
    const { 'webhook-signature': _omitted, ...unsigned } = signedBy([A], now);
    expect(verifyDelivery([A], { headers: unsigned, rawBody: BODY, receivedAt: now })).toEqual({
      result: 'invalid',
      reason: 'missing headers: webhook-signature',
    });
    const headers = { ...signedBy([A], now), 'webhook-timestamp': 'yesterday' };
    expect(verifyDelivery([A], { headers, rawBody: BODY, receivedAt: now })).toEqual({
      result: 'invalid',
      reason: 'bad webhook-timestamp header',
    });
  });

  it('refuses a timestamp more than 5 minutes from the receive time', () => {
    const old = new Date(now.getTime() - 301_000);
    const ahead = new Date(now.getTime() + 301_000);
    const within = new Date(now.getTime() - 299_000);
    expect(
      verifyDelivery([A], { headers: signedBy([A], old), rawBody: BODY, receivedAt: now }),
    ).toEqual({
      result: 'invalid',
      reason: 'timestamp too old',
    });
    expect(
      verifyDelivery([A], { headers: signedBy([A], ahead), rawBody: BODY, receivedAt: now }),
    ).toEqual({ result: 'invalid', reason: 'timestamp too new' });
    expect(
      verifyDelivery([A], { headers: signedBy([A], within), rawBody: BODY, receivedAt: now }),
    ).toEqual({ result: 'verified', secret_index: 0 });
  });

  it('judges a stored delivery by its receive time when verifying it again later', () => {
    const hourAgo = new Date(now.getTime() - 3600_000);
    const stored = { headers: signedBy([B], hourAgo), rawBody: BODY, receivedAt: hourAgo };
    expect(verifyDelivery([A, B], stored)).toEqual({ result: 'verified', secret_index: 1 });
    expect(verifyDelivery([A], stored)).toEqual({
      result: 'invalid',
      reason: 'unknown secret',
      key_ids: [keyId(B)],
    });
    const tampered = { ...stored, rawBody: Buffer.from(`${BODY.toString()} `) };
    expect(verifyDelivery([B], tampered)).toEqual({
      result: 'invalid',
      reason: 'signature mismatch',
      secret_index: 0,
    });
  });
});
