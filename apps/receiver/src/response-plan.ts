import { MAX_DELAY_MS } from './receiver.constants';

/** How the receiver answers one delivery. */
export interface ResponsePlan {
  status: number;
  delayMs: number;
  /** Set when the request itself was malformed (status 400, answered at once). */
  error?: string;
}

const STATUS_PATH_RE = /^\/status\/([^/]*)\/?$/;

/**
 * `/status/<code>` answers with that code (100-599; a 1xx is sent as given, which HTTP
 * clients reject or take as informational and keep waiting for a final answer), any other
 * path with 204. `?delay_ms=` (at most {@link MAX_DELAY_MS}, larger values are capped)
 * holds the answer back, to try the sender's timeout.
 */
export function planResponse(path: string, query: URLSearchParams): ResponsePlan {
  let status = 204;
  const statusPath = STATUS_PATH_RE.exec(path);
  if (statusPath) {
    const code = /^\d{3}$/.test(statusPath[1]) ? Number(statusPath[1]) : NaN;
    if (!(code >= 100 && code <= 599)) {
      return { status: 400, delayMs: 0, error: 'status code must be an integer 100-599' };
    }
    status = code;
  }

  let delayMs = 0;
  const delay = query.get('delay_ms');
  if (delay !== null) {
    if (!/^\d+$/.test(delay)) {
      return {
        status: 400,
        delayMs: 0,
        error: `delay_ms must be a whole number of milliseconds (at most ${MAX_DELAY_MS})`,
      };
    }
    delayMs = Math.min(Number(delay), MAX_DELAY_MS);
  }
  return { status, delayMs };
}
