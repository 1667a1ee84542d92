/** The HTTP transport: auth headers, time-outs, typed errors and retries with backoff. */
import { APIConnectionError, APIError, APITimeoutError, errorFromResponse } from "./errors.js";

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Retry policy: `maxRetries` tries after the first; waits `baseMs * 2**n` (capped at `maxWaitMs`)
 * with ±`jitter` of it, never less than a `Retry-After` (itself capped at `maxRetryAfterMs`). */
export interface RetryPolicy {
  maxRetries: number;
  baseMs: number;
  maxWaitMs: number;
  jitter: number;
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 2, baseMs: 500, maxWaitMs: 8000, jitter: 0.25, maxRetryAfterMs: 60000 };

/** Milliseconds to wait before retry number `attempt` (0 for the first retry). */
export function retryWaitMs(policy: RetryPolicy, attempt: number, retryAfterS: number | null = null): number {
  let backoff = Math.min(policy.maxWaitMs, policy.baseMs * 2 ** attempt);
  backoff += (Math.random() * 2 - 1) * backoff * policy.jitter;
  if (retryAfterS !== null) return Math.max(backoff, Math.min(retryAfterS * 1000, policy.maxRetryAfterMs));
  return Math.max(0, backoff);
}

export interface TransportConfig {
  baseUrl: string;
  tenantId?: string;
  apiKey?: string;
  getToken?: () => string | Promise<string>;
  timeoutMs: number;
  retry: RetryPolicy;
  fetch: FetchLike;
  headers: Record<string, string>;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | string[] | null | undefined>;
  headers?: Record<string, string>;
  /** Safe to send twice (GET, PUT, DELETE…); a POST that runs something is not. */
  idempotent?: boolean;
  signal?: AbortSignal;
  /** Statuses answered as they are instead of thrown (e.g. 304). */
  accept?: number[];
  /** Keep the body unread (streams); `timeoutMs` then covers the headers only. */
  stream?: boolean;
  /** Override the number of retries for this call. */
  maxRetries?: number;
}

export interface RawResponse<T = unknown> {
  status: number;
  headers: Headers;
  data: T;
  response: Response;
}

const NEVER_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT", "EHOSTUNREACH"]);

/** Whether a fetch failure happened before the request reached the server. */
export function neverSent(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } })?.cause;
  return Boolean(cause?.code && NEVER_SENT.has(cause.code));
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export class Transport {
  readonly config: TransportConfig;

  constructor(config: TransportConfig) {
    this.config = { ...config, baseUrl: config.baseUrl.replace(/\/+$/, "") };
  }

  url(path: string, query?: RequestOptions["query"]): string {
    const url = new URL(this.config.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(item));
    }
    return url.toString();
  }

  /** The tenant and credential headers (a fresh token from `getToken` on each call). */
  async authHeaders(): Promise<Record<string, string>> {
    const headers: Record<string, string> = {};
    if (this.config.tenantId) headers["X-Tenant-ID"] = this.config.tenantId;
    const token = this.config.getToken ? await this.config.getToken() : this.config.apiKey;
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  /** Send a request; retry 429/503/network errors with backoff (for a non-idempotent request
   * only when nothing was recorded); throw the typed error of any other failure. */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<RawResponse<T>> {
    const idempotent = options.idempotent ?? method !== "POST";
    const maxRetries = options.maxRetries ?? this.config.retry.maxRetries;
    for (let attempt = 0; ; attempt++) {
      let retryAfter: number | null = null;
      let failure: unknown;
      try {
        return await this.once<T>(method, path, options);
      } catch (error) {
        failure = error;
        if (options.signal?.aborted) throw error;
        if (error instanceof APIError) {
          if (error.status !== 429 && error.status !== 503) throw error;
          if (!idempotent && error.executionId) throw error;
          retryAfter = error.retryAfter;
        } else if (error instanceof APIConnectionError) {
          if (!idempotent && !(error instanceof APITimeoutError) && !neverSent(error.cause)) throw error;
          if (!idempotent && error instanceof APITimeoutError) throw error;
        } else {
          throw error;
        }
      }
      if (attempt >= maxRetries) throw failure;
      await sleep(retryWaitMs(this.config.retry, attempt, retryAfter), options.signal);
    }
  }

  private async once<T>(method: string, path: string, options: RequestOptions): Promise<RawResponse<T>> {
    const headers: Record<string, string> = {
      Accept: options.stream ? "text/event-stream" : "application/json",
      ...this.config.headers,
      ...(await this.authHeaders()),
      ...options.headers,
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new APITimeoutError(`${method} ${path}: no answer within ${this.config.timeoutMs} ms`)), this.config.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
    let response: Response;
    try {
      response = await this.config.fetch(this.url(path, options.query), { method, headers, body, signal });
    } catch (error) {
      clearTimeout(timer);
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      if (timeout.signal.aborted) throw timeout.signal.reason;
      throw new APIConnectionError(`${method} ${path}: ${(error as Error)?.message ?? error}`, { cause: error });
    }
    if (options.stream && response.ok) {
      clearTimeout(timer);
      return { status: response.status, headers: response.headers, data: undefined as T, response };
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      if (timeout.signal.aborted) throw timeout.signal.reason;
      throw new APIConnectionError(`${method} ${path}: the answer broke off`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
    let data: unknown = undefined;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok && !(options.accept ?? []).includes(response.status)) {
      throw errorFromResponse(response.status, response.headers, data, text);
    }
    return { status: response.status, headers: response.headers, data: data as T, response };
  }
}
