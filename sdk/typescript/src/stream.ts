/** A streamed execution: an async iterable of typed events that resumes a dropped connection
 * with `Last-Event-ID`, times out a silent one, closes on abort, and cancels upstream on
 * `cancel()`. */
import { APIConnectionError, APIError, CircuitBreakerError, StreamError, errorFromObject } from "./errors.js";
import { type StreamEvent, TERMINAL_EVENTS, toEvent } from "./events.js";
import { retryWaitMs, sleep, type Transport } from "./http.js";
import { parseSSE } from "./sse.js";
import type { Execution, ExecutionResult } from "./types.js";

export interface StreamControl {
  /** Resume a dropped connection (default true). `agents.stream` then asks the server to run
   * on across a disconnect (`on_disconnect: "continue"`) unless told otherwise; `false` (or
   * `stream_options.on_disconnect: "cancel"`) leaves the API's default: closing the stream
   * cancels the execution upstream, and a dropped stream is not resumed. */
  resume?: boolean;
  /** Resume a dropped connection at most this many times in a row (default 5). */
  maxResumes?: number;
  /** Count a connection silent for this long as dropped (default: 2 heartbeats + 5 s). */
  heartbeatTimeoutMs?: number;
  /** Aborting closes the stream (as `close()` and leaving the loop do). */
  signal?: AbortSignal;
}

/** Why a connection is considered dropped (resumable). */
class Dropped extends CircuitBreakerError {}

/** The first request failed: thrown on as it is. */
class Refused {
  constructor(readonly error: unknown) {}
}

export class ExecutionStream implements AsyncIterable<StreamEvent> {
  /** The execution's id, once its `execution_start` arrived (or given when resuming). */
  executionId: string | null;
  /** The id of the last event delivered: where a resume starts. */
  lastEventId: number;
  /** How many times the connection was resumed. */
  resumes = 0;
  private readonly transport: Transport;
  private readonly open: (signal: AbortSignal) => Promise<Response>;
  private readonly control: { maxResumes: number; heartbeatTimeoutMs: number; signal?: AbortSignal };
  private readonly heartbeatS: number;
  private readonly closer = new AbortController();
  private started = false;
  private opened = false;
  private result: ExecutionResult | null = null;
  /** Whether closing the connection cancels the execution (the API's `on_disconnect: cancel`). */
  private readonly closeCancels: boolean;
  /** Settles once the execution id is known or the stream has ended, whichever comes first. */
  private readonly settled: Promise<void>;
  private settle!: () => void;

  constructor(
    transport: Transport,
    open: (signal: AbortSignal) => Promise<Response>,
    options: StreamControl & { heartbeatS?: number; executionId?: string; lastEventId?: number; closeCancels?: boolean } = {},
  ) {
    this.transport = transport;
    this.open = open;
    this.heartbeatS = options.heartbeatS ?? 15;
    this.control = {
      maxResumes: options.resume === false ? 0 : (options.maxResumes ?? 5),
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? this.heartbeatS * 2000 + 5000,
      signal: options.signal,
    };
    this.executionId = options.executionId ?? null;
    this.lastEventId = options.lastEventId ?? 0;
    this.closeCancels = options.closeCancels ?? false;
    this.settled = new Promise((resolve) => (this.settle = resolve));
    if (this.executionId) this.settle();
    options.signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** Close the connection; the iteration ends. A resumable stream (the default) leaves the
   * execution running on the server: use `cancel()` to stop it. */
  close(): void {
    this.closer.abort(new StreamError("stream closed"));
    this.settle();
  }

  /** Cancel the execution upstream (`POST /api/v1/executions/{id}/cancel`), then close the
   * stream; the iteration ends (with the cancellation's `error` event if it arrives first).
   * Answers the execution as recorded (`status: "cancelled"`; again so for one already
   * cancelled), or null when the stream had not started an execution (never iterated, or
   * refused). Before `execution_start` it waits for the id, except on a stream whose close
   * cancels by itself (`resume: false`), which it just closes. An execution that ended
   * otherwise throws `ConflictError` (the stream is closed all the same). */
  async cancel(options: { signal?: AbortSignal } = {}): Promise<Execution | null> {
    try {
      if (!this.executionId && this.opened && !this.closed && !this.closeCancels) {
        const waited = new AbortController();
        await Promise.race([this.settled, sleep(this.transport.config.timeoutMs, waited.signal).catch(() => {})]);
        waited.abort();
        if (!this.executionId && !this.closed) {
          throw new StreamError(`no execution_start within ${this.transport.config.timeoutMs} ms: nothing to cancel by id`);
        }
      }
      if (!this.executionId) return null;
      const reply = await this.transport.request<Execution>("POST", `/api/v1/executions/${encodeURIComponent(this.executionId)}/cancel`, {
        idempotent: true,
        signal: options.signal,
      });
      return reply.data;
    } finally {
      this.close();
    }
  }

  get closed(): boolean {
    return this.closer.signal.aborted;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<StreamEvent> {
    if (this.started) throw new StreamError("a stream can be iterated once");
    this.started = true;
    let failures = 0;
    let response: Response | null = null;
    try {
      while (!this.closed) {
        try {
          if (response === null) {
            const first = !this.opened;
            try {
              response = await this.connect();
            } catch (error) {
              // a refusal of the request itself (a limit, a budget, a bad body) is its answer
              if (first && !this.closed) throw new Refused(error);
              throw error;
            }
          }
          for await (const event of this.events(response)) {
            failures = 0;
            yield event;
            if (TERMINAL_EVENTS.has(event.type)) return;
          }
          throw new Dropped("the stream ended before its terminal event");
        } catch (error) {
          response = null;
          if (error instanceof Refused) throw error.error;
          if (this.closed) return;
          const resumable = error instanceof Dropped || (error instanceof APIConnectionError) ||
            (error instanceof APIError && (error.status === 503 || error.status === 429));
          if (!resumable) throw error;
          if (this.control.maxResumes === 0) throw new StreamError(`the stream broke: ${(error as Error).message}`, { cause: error });
          if (!this.executionId) throw new StreamError("the stream broke before its execution started", { cause: error });
          if (failures >= this.control.maxResumes) {
            throw new StreamError(`the stream broke and ${failures} resumes failed: ${(error as Error).message}`, { cause: error });
          }
          await sleep(retryWaitMs(this.transport.config.retry, failures, error instanceof APIError ? error.retryAfter : null), this.closer.signal).catch(() => {});
          failures += 1;
          this.resumes += 1;
        }
      }
    } finally {
      this.close();
    }
  }

  /** The first connection, or a resume after `lastEventId`. */
  private connect(): Promise<Response> {
    if (!this.opened) {
      this.opened = true;
      return this.open(this.closer.signal);
    }
    return this.transport
      .request("GET", `/api/v1/executions/${encodeURIComponent(this.executionId!)}/stream`, {
        headers: { "Last-Event-ID": String(this.lastEventId) },
        query: { heartbeat_s: this.heartbeatS },
        stream: true,
        signal: this.closer.signal,
        maxRetries: 0,
      })
      .then((reply) => reply.response);
  }

  /** The typed events of one connection, each id once: older ids (a replay's overlap) are skipped. */
  private async *events(response: Response): AsyncGenerator<StreamEvent> {
    if (!response.body) throw new Dropped("the answer has no body");
    const silence = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => silence.abort(), this.control.heartbeatTimeoutMs);
    };
    const stop = AbortSignal.any([silence.signal, this.closer.signal]);
    arm();
    try {
      for await (const message of parseSSE(response.body, arm, stop)) {
        const id = message.id !== null && message.id !== "" ? Number(message.id) : null;
        if (id !== null && id <= this.lastEventId) continue;
        let data: Record<string, unknown>;
        try {
          data = JSON.parse(message.data);
        } catch {
          continue;
        }
        const event = toEvent(message.event, id, data);
        if (id !== null) this.lastEventId = id;
        if (event === null) continue;
        if (event.type === "execution_start" && event.execution_id) {
          this.executionId = event.execution_id;
          this.settle();
        }
        // the runtime went away mid-stream: resume from the last id (the store has the rest)
        if (event.type === "error" && id === null && event.error_type === "execution_interrupted") {
          throw new Dropped(event.message);
        }
        if (event.type === "execution_complete") this.result = event.result;
        yield event;
      }
    } catch (error) {
      if (this.closed) return;
      if (silence.signal.aborted) throw new Dropped(`no event or heartbeat for ${this.control.heartbeatTimeoutMs} ms`);
      if (error instanceof CircuitBreakerError) throw error;
      throw new Dropped(`the connection broke: ${(error as Error)?.message ?? error}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
    if (silence.signal.aborted) throw new Dropped(`no event or heartbeat for ${this.control.heartbeatTimeoutMs} ms`);
  }

  /** Read the stream to its end and answer the final result (as `agents.execute` would);
   * a terminal `error` event is thrown as its typed error. */
  async finalResult(): Promise<ExecutionResult> {
    if (!this.started) {
      for await (const event of this) {
        if (event.type === "error") {
          throw errorFromObject({ type: event.error_type, message: event.message, details: event.details, execution_id: event.execution_id ?? this.executionId });
        }
      }
    }
    if (this.result === null) throw new StreamError("the stream ended without a result");
    return this.result;
  }

  /** Read the stream to its end and answer the text of its content chunks. */
  async text(): Promise<string> {
    const parts: string[] = [];
    for await (const event of this) {
      if (event.type === "content_chunk") parts.push(event.delta);
      else if (event.type === "attempt_restarted") parts.length = 0; // the earlier attempt's text is void
      else if (event.type === "error") {
        throw errorFromObject({ type: event.error_type, message: event.message, details: event.details, execution_id: event.execution_id ?? this.executionId });
      }
    }
    return parts.join("");
  }
}

