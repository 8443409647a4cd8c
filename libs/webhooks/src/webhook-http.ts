import axios, { AxiosResponse, LookupAddress } from 'axios';
import { lookup as dnsLookup } from 'node:dns';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { checkAddress, refusalMessage, refusalWithoutLookup } from './ssrf';

/** How much of a subscriber's answer we read; the rest is never buffered. */
export const RESPONSE_READ_LIMIT = 64 * 1024;
/** How much of it an attempt record keeps. */
export const RESPONSE_EXCERPT_LIMIT = 2048;

export interface SendResult {
  /** Null when no status line arrived (connection error, refusal, timeout). */
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  responseExcerpt: string | null;
  retryAfter: string | undefined;
}

export interface WebhookHttpOptions {
  timeoutMs: number;
  allowPrivateNetworks: boolean;
}

/** A refused destination; its message is what the attempt record shows. */
export class DestinationRefusedError extends Error {
  readonly code = 'EDESTINATIONREFUSED';
}

/**
 * POSTs one signed webhook. Built on axios with these choices, each a defence:
 *
 * - The destination is checked where the connection is made: a `lookup` that refuses
 *   private, loopback, link-local… answers (so DNS rebinding and a name that resolves
 *   inside the network fail), plus a check of IP literals, which Node connects to without
 *   a lookup. A check only when the webhook is created would not see either.
 * - Redirects are not followed (`maxRedirects: 0`): a 3xx is a failed attempt.
 * - `proxy: false`, so an `HTTP_PROXY` in the environment can't route around the check.
 * - One deadline for the whole attempt (connect, headers and body): axios' `timeout` is an
 *   idle timeout that a receiver trickling a byte a second never trips.
 * - The body is read as a stream and cut at {@link RESPONSE_READ_LIMIT}; nothing is
 *   decompressed, so a 10 MB answer or a zip bomb costs at most that much memory.
 */
export class WebhookHttpClient {
  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly options: WebhookHttpOptions) {}

  async post(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    const controller = new AbortController();
    let stream: Readable | undefined;
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      controller.abort();
      stream?.destroy();
    }, this.options.timeoutMs);
    const failed = (error: string, statusCode: number | null = null): SendResult => ({
      statusCode,
      durationMs: elapsed(),
      error,
      responseExcerpt: null,
      retryAfter: undefined,
    });

    try {
      const refusal = refusalWithoutLookup(url, this.options.allowPrivateNetworks);
      if (refusal) return failed(refusal);

      let response: AxiosResponse<Readable>;
      try {
        response = await axios.post<Readable>(url, body, {
          // We don't decompress (a zip bomb would defeat the read limit), so don't ask for it.
          headers: { ...headers, 'accept-encoding': 'identity' },
          responseType: 'stream',
          maxRedirects: 0,
          proxy: false,
          decompress: false,
          validateStatus: () => true,
          signal: controller.signal,
          httpAgent: this.httpAgent,
          httpsAgent: this.httpsAgent,
          lookup: this.lookup,
          transformRequest: [(data: unknown) => data],
        });
      } catch (err) {
        if (timedOut) return failed(`no response within ${this.options.timeoutMs} ms`);
        return failed(describeError(err));
      }

      stream = response.data;
      const { text, complete } = await readCapped(stream, RESPONSE_READ_LIMIT);
      const status = response.status;
      const retryAfter = headerValue(response.headers['retry-after']);
      let error: string | null = null;
      if (status >= 300 && status < 400)
        error = `redirect to ${String(response.headers.location ?? '(no location)')} not followed`;
      else if (!complete && timedOut)
        error = `response body not finished within ${this.options.timeoutMs} ms`;
      return {
        statusCode: status,
        durationMs: elapsed(),
        error,
        responseExcerpt: storableText(text.slice(0, RESPONSE_EXCERPT_LIMIT)),
        retryAfter,
      };
    } finally {
      clearTimeout(deadline);
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** dns.lookup, answering only with addresses we may connect to (all of them, or an error). */
  private readonly lookup = (
    hostname: string,
    opts: { family?: number },
    cb: (err: Error | null, addresses: LookupAddress[]) => void,
  ): void => {
    dnsLookup(hostname, { all: true, family: opts.family ?? 0 }, (err, addresses) => {
      if (err) return cb(err, []);
      // Any refused answer refuses the host: which address gets used is not ours to pick.
      for (const a of addresses) {
        const verdict = checkAddress(a.address, this.options.allowPrivateNetworks);
        if (!verdict.allowed)
          return cb(
            new DestinationRefusedError(refusalMessage(a.address, verdict.class, hostname)),
            [],
          );
      }
      cb(
        null,
        addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })),
      );
    });
  };
}

/** PostgreSQL text can't hold NUL; a binary answer is kept as readable as it goes. */
export const storableText = (text: string): string => text.replaceAll('\u0000', '\uFFFD');

function headerValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

/** Reads at most `limit` bytes, then stops the stream; never holds more than that. */
function readCapped(stream: Readable, limit: number): Promise<{ text: string; complete: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (complete: boolean, stop: boolean): void => {
      if (settled) return;
      settled = true;
      stream.removeAllListeners('data');
      if (stop) stream.destroy();
      resolve({ text: Buffer.concat(chunks).toString('utf8'), complete });
    };
    stream.on('data', (chunk: Buffer) => {
      const room = limit - size;
      if (room > 0) {
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
        chunks.push(part);
        size += part.length;
      }
      // Enough to show what the receiver said: hang up rather than download the rest.
      if (size >= limit) finish(true, true);
    });
    stream.on('end', () => finish(true, false));
    stream.on('error', () => finish(false, true));
    stream.on('close', () => finish(false, false));
  });
}

function describeError(err: unknown): string {
  let e = err as { code?: string; message?: string; cause?: unknown };
  // axios wraps the lookup's refusal; show the refusal, not the wrapper.
  if (e.cause instanceof DestinationRefusedError) e = e.cause;
  if (e instanceof DestinationRefusedError) return e.message;
  const code = e.code && e.code !== 'ERR_BAD_REQUEST' ? `${e.code}: ` : '';
  return storableText(`${code}${e.message ?? String(err)}`.slice(0, 500));
}
