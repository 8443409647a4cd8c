import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { until } from './fixtures';

export interface Received {
  /** 1-based, in arrival order. */
  n: number;
  path: string;
  headers: Record<string, string>;
  body: string;
  startedAt: number;
  /** When our answer was sent. */
  endedAt?: number;
  status?: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

/**
 * A subscriber endpoint for tests: records every request (raw body, headers, times) and
 * answers with whatever `respond` says for the n-th request (default 204).
 */
export class TestReceiver {
  readonly received: Received[] = [];
  respond: (r: Received) => Answer = () => ({ status: 204 });
  private server?: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }

  /** Waits until `n` requests have been answered (polls; fails after `timeoutMs`). */
  async waitFor(n: number, timeoutMs = 20000): Promise<Received[]> {
    await until(
      `${n} answered requests`,
      () => this.received.filter((r) => r.endedAt !== undefined).length,
      { done: (answered) => answered >= n, timeoutMs, everyMs: 25 },
    );
    return this.received;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const r: Received = {
      n: this.received.length + 1,
      path: req.url ?? '',
      headers: Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [
          k,
          Array.isArray(v) ? v.join(',') : (v ?? ''),
        ]),
      ),
      body: Buffer.concat(chunks).toString('utf8'),
      startedAt: Date.now(),
    };
    this.received.push(r);
    const answer = this.respond(r);
    if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    r.status = answer.status;
    res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
    r.endedAt = Date.now();
  }
}

/** Receivers started as a suite needs them, all closed at its end. */
export class TestReceivers {
  private readonly started: TestReceiver[] = [];

  async start(): Promise<TestReceiver> {
    const r = await new TestReceiver().start();
    this.started.push(r);
    return r;
  }

  async close(): Promise<void> {
    await Promise.all(this.started.map((r) => r.close()));
  }
}
