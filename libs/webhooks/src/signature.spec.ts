import * as fc from 'fast-check';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { generateSecret, sign, signatureHeader, SECRET_PREFIX, verifySignature } from './signature';

describe('Standard Webhooks signatures', () => {
  // The spec's own example (standard-webhooks/spec, "Signature scheme").
  const specSecret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const specId = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
  const specTs = 1614265330;
  const specBody = '{"test": 2432232314}';

  it("matches the specification's worked example", () => {
    expect(sign(specSecret, specId, specTs, specBody)).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  it('generates whsec_ secrets of 32 random bytes, all different', () => {
    const secrets = new Set(Array.from({ length: 200 }, generateSecret));
    expect(secrets.size).toBe(200);
    for (const s of secrets) {
      expect(s.startsWith(SECRET_PREFIX)).toBe(true);
      expect(Buffer.from(s.slice(SECRET_PREFIX.length), 'base64')).toHaveLength(32);
    }
  });

  it('is verified by the standardwebhooks package for any id and body (property)', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.json(), (id, body) => {
        const secret = generateSecret();
        const ts = Math.floor(Date.now() / 1000);
        const headers = {
          'webhook-id': id,
          'webhook-timestamp': String(ts),
          'webhook-signature': signatureHeader([secret], id, ts, body),
        };
        expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
      }),
      { numRuns: 200 },
    );
  });

  it('during a rotation both secrets verify the same header, a third does not', () => {
    const [oldSecret, newSecret, other] = [generateSecret(), generateSecret(), generateSecret()];
    const ts = Math.floor(Date.now() / 1000);
    const body = '{"type":"alert.created"}';
    const header = signatureHeader([newSecret, oldSecret], 'evt', ts, body);
    expect(header.split(' ')).toHaveLength(2);
    const headers = {
      'webhook-id': 'evt',
      'webhook-timestamp': String(ts),
      'webhook-signature': header,
    };
    expect(new Webhook(oldSecret).verify(body, headers)).toEqual({ type: 'alert.created' });
    expect(new Webhook(newSecret).verify(body, headers)).toEqual({ type: 'alert.created' });
    expect(() => new Webhook(other).verify(body, headers)).toThrow(WebhookVerificationError);
    expect(verifySignature(oldSecret, 'evt', ts, body, header)).toBe(true);
    expect(verifySignature(other, 'evt', ts, body, header)).toBe(false);
  });

  it('changes with every signed part', () => {
    const secret = generateSecret();
    const base = sign(secret, 'a', 1, 'body');
    expect(sign(secret, 'b', 1, 'body')).not.toBe(base);
    expect(sign(secret, 'a', 2, 'body')).not.toBe(base);
    expect(sign(secret, 'a', 1, 'Body')).not.toBe(base);
    expect(sign(generateSecret(), 'a', 1, 'body')).not.toBe(base);
    expect(verifySignature(secret, 'a', 1, 'body ', base)).toBe(false);
  });

  it('verifies a signature of any age, which the package refuses past 5 minutes', () => {
    const secret = generateSecret();
    const ts = Math.floor(Date.now() / 1000) - 3600;
    const header = signatureHeader([secret], 'evt', ts, 'body');
    expect(verifySignature(secret, 'evt', ts, 'body', header)).toBe(true);
    expect(verifySignature(secret, 'evt', ts, 'body', `v2,x ${header}`)).toBe(true);
    expect(verifySignature(secret, 'evt', ts + 1, 'body', header)).toBe(false);
    expect(() =>
      new Webhook(secret).verify('body', {
        'webhook-id': 'evt',
        'webhook-timestamp': String(ts),
        'webhook-signature': header,
      }),
    ).toThrow(/too old/);
  });

  it('refuses a secret without the whsec_ prefix', () => {
    expect(() => sign('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'a', 1, 'b')).toThrow(/whsec_/);
  });
});
