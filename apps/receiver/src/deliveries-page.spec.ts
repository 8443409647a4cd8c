import { keyId } from '@app/webhooks/signature';
import { renderDeliveriesPage } from './deliveries-page';
import { Delivery } from './delivery';
import { Verification } from './verify-delivery';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

function delivery(verification: Verification, id = 1): Delivery {
  return {
    id,
    receivedAt: new Date('2026-11-27T16:00:00Z'),
    path: '/',
    query: '',
    headers: { 'webhook-id': `msg_${id}` },
    rawBody: Buffer.from('{}'),
    body: { text: '{}', json: true, truncated: false, bytes: 2 },
    type: 'webhook.test',
    status: 204,
    delayMs: 0,
    verification,
  };
}

/** The page, its white space collapsed. */
const page = (...deliveries: Delivery[]) =>
  renderDeliveriesPage({
    deliveries,
    secrets: [{ value: SECRET, source: 'env' }],
    baseUrl: 'http://127.0.0.1:9000',
    refresh: false,
  }).replace(/\s+/g, ' ');

describe('the receiver page', () => {
  it('says an unknown secret signed a delivery, with its key id and how to add the secret', () => {
    const html = page(
      delivery({ result: 'invalid', reason: 'unknown secret', key_ids: ['0a1b2c3d'] }),
    );
    expect(html).toContain('✗ invalid</span> <span class="why">unknown secret</span>');
    expect(html).toMatch(/signed with key 0a1b2c3d, which no secret here has/);
    expect(html).toContain('<code>RECEIVER_SECRETS</code>');
    expect(html).toContain('or with the form above');
    expect(html).not.toContain('changed after signing');
  });

  it('says a known secret signed a changed message: signature mismatch, naming the secret', () => {
    const html = page(
      delivery({ result: 'invalid', reason: 'signature mismatch', secret_index: 0 }),
    );
    expect(html).toContain('<span class="why">signature mismatch</span>');
    expect(html).toMatch(/secret #0 signed it, but the body/);
    expect(html).not.toContain('no secret here has');
  });

  it("lists each secret's key id, so a delivery's key id can be matched to it", () => {
    expect(page()).toContain(`key <code>${keyId(SECRET)}</code>`);
  });
});
