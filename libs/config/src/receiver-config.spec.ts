import { ConfigValidationError } from './env.validation';
import { isWebhookSecret, loadReceiverConfig } from './receiver-config';

// An empty variable means its default, so these pin every variable whatever the
// machine's environment or .env says.
const unset = {
  RECEIVER_PORT: '',
  RECEIVER_HOST: '',
  RECEIVER_SECRETS: '',
  LOG_LEVEL: '',
  LOG_FORMAT: '',
  NODE_ENV: '',
};
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

describe('receiver configuration', () => {
  it('defaults to 127.0.0.1:9000 without secrets, and needs nothing else', () => {
    expect(loadReceiverConfig({ ...unset, ADMIN_TOKEN: '', DATABASE_URL: 'not a url' })).toEqual({
      port: 9000,
      host: '127.0.0.1',
      secrets: [],
      logLevel: 'info',
      logFormat: 'auto',
    });
  });

  it('reads LOG_FORMAT, and NODE_ENV unchecked (what LOG_FORMAT=auto goes by)', () => {
    expect(
      loadReceiverConfig({ ...unset, LOG_FORMAT: 'pretty', NODE_ENV: 'production' }),
    ).toMatchObject({ logFormat: 'pretty', env: 'production' });
    expect(() => loadReceiverConfig({ ...unset, LOG_FORMAT: 'yaml' })).toThrow(
      'LOG_FORMAT: must be one of auto, json, pretty',
    );
  });

  it('reads a comma- or space-separated secret list', () => {
    const config = loadReceiverConfig({
      ...unset,
      RECEIVER_PORT: '9100',
      RECEIVER_HOST: '0.0.0.0',
      RECEIVER_SECRETS: ` ${SECRET}, whsec_YQ==  whsec_YWJj\n`,
    });
    expect(config).toMatchObject({ port: 9100, host: '0.0.0.0' });
    expect(config.secrets).toEqual([SECRET, 'whsec_YQ==', 'whsec_YWJj']);
  });

  it('names every bad variable without echoing a secret', () => {
    let caught: unknown;
    try {
      loadReceiverConfig({
        ...unset,
        RECEIVER_PORT: '99999',
        RECEIVER_HOST: 'not a host',
        RECEIVER_SECRETS: `${SECRET},whsec_not-base64!`,
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigValidationError);
    const message = (caught as Error).message;
    expect(message).toMatch(/RECEIVER_PORT: must be a port number 0-65535, got "99999"/);
    expect(message).toMatch(/RECEIVER_HOST/);
    expect(message).toMatch(/RECEIVER_SECRETS: entry 1 /);
    expect(message).not.toContain('not-base64');
  });

  it.each(['eighty', '-1', '8000.5', '65536'])('refuses RECEIVER_PORT=%s', (port) => {
    expect(() => loadReceiverConfig({ ...unset, RECEIVER_PORT: port })).toThrow(/RECEIVER_PORT/);
  });

  it.each([
    [SECRET, true],
    ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', true],
    ['whsec_', false],
    ['whsec_YQ', false],
    ['whsec_a_b-', false],
  ])('isWebhookSecret(%s) is %s', (value, expected) => {
    expect(isWebhookSecret(value)).toBe(expected);
  });
});
