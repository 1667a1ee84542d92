/// <reference types="node" />
/**
 * `@circuit-breaker/sdk/testing`: a fake Circuit Breaker gateway for your unit tests. A real
 * HTTP server on 127.0.0.1 (a free port, in your test's process) that speaks the gateway's wire
 * format — REST, SSE streams with ids (resumable with `Last-Event-ID`), OpenAI's
 * `/v1/chat/completions` and `/v1/models`, and GraphQL at `/graphql` — with its state in memory.
 *
 * ```ts
 * import { FakeGateway } from "@circuit-breaker/sdk/testing";
 *
 * const gw = await FakeGateway.start();
 * gw.replyFor("summarise", "Short.", { usage: { prompt_tokens: 9, completion_tokens: 2 } });
 * const client = gw.client();                 // a Client of the fake's tenant
 * const agent = await client.agents.create({ name: "Summariser", model: "cb:smart-chat" });
 * (await client.agents.execute(agent.id, { prompt: "summarise this" })).response?.content; // "Short."
 * gw.fail(429, "rate_limited", { retryAfter: 0 });   // the next request is refused once
 * gw.requests.at(-1)?.json;                            // what the SDK sent
 * await gw.close();
 * ```
 *
 * Data subjects and retention are kept in memory too: an execution's `subject` (or OpenAI's and
 * GraphQL's `user`) is recorded, `GET /api/v1/subjects/{subject}` lists its executions (with their
 * `input`), `…/export` answers JSON lines (each execution, then its stream events as
 * `{"kind": "event", "aggregate_id", "version", "topic", "data"}`), `DELETE` marks them erased
 * (`"payload": "erased"`, `[erased]` texts); `GET`/`PUT`/`DELETE /api/v1/retention` keep the
 * setting (nothing is swept).
 *
 * GraphQL needs the `graphql` package (an optional peer dependency), loaded only when a
 * request comes to `/graphql`. The main entry of the SDK never loads this module.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readFile } from "node:fs/promises";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Client, type ClientOptions } from "./client.js";

export const VIRTUAL_MODELS = ["auto", "cb:smart-chat", "cb:cost-optimal", "cb:fastest", "cb:coding", "cb:analysis", "cb:creative"];
const SCOPES = ["agents:read", "agents:write", "agents:execute", "executions:read", "analytics:read", "tenant:admin"];
const EVENT_TYPES = ["execution_start", "content_chunk", "tool_call", "tool_result", "usage_update", "execution_complete", "error"];
/** The status each error type is answered with (docs/api.md). */
const STATUSES: Record<string, number> = {
  invalid_request: 400, missing_tenant: 400, model_not_found: 400, capability_not_supported: 400,
  provider_rejected_request: 400, context_length_exceeded: 400, unknown_tool: 400, authentication_failed: 401,
  budget_exceeded: 402, permission_denied: 403, model_not_allowed: 403, not_found: 404, conflict: 409,
  resume_unavailable: 410, payload_too_large: 413, tool_iteration_limit: 422, rate_limited: 429,
  provider_rate_limited: 429, provider_error: 502, provider_authentication_failed: 502, service_unavailable: 503,
  overloaded: 503, provider_overloaded: 503, no_model_available: 503, provider_timeout: 504,
};
/** Types that are an execution's outcome: recorded, with the execution's id. */
const OUTCOME_TYPES = new Set([
  "provider_error", "provider_timeout", "provider_rate_limited", "provider_overloaded", "provider_authentication_failed",
  "provider_rejected_request", "context_length_exceeded", "tool_iteration_limit", "no_model_available",
]);
const OPENAI_TYPES: Record<number, string> = {
  400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
  409: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
};
const ERASED = "[erased]"; // a text whose key is gone
const ERASED_INPUT = { erased: true }; // an erased request, as history shows its input
const RATE_HEADERS: Record<string, string> = { "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "599", "X-RateLimit-Reset": "0" };
const GQL_PARAMS: Record<string, string> = {
  temperature: "temperature", maxTokens: "max_tokens", topP: "top_p", frequencyPenalty: "frequency_penalty", presencePenalty: "presence_penalty",
};

type Json = Record<string, any>;
type LoadedSchema = { graphql: typeof import("graphql"); schema: import("graphql").GraphQLSchema };

/** One request the fake received: `headers` have lower-case names; `json` is the parsed body. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string[]>;
  headers: Record<string, string>;
  json: any;
}

/** How an answer is scripted (`reply`, `replyFor`). */
export interface ReplyOptions {
  /** `prompt_tokens`, `completion_tokens`, `cost_usd`, `cached_tokens` (defaults: estimates). */
  usage?: { prompt_tokens?: number; completion_tokens?: number; cost_usd?: number; cached_tokens?: number };
  /** The streamed pieces (default: the text word by word). */
  chunks?: string[];
  /** Milliseconds before each chunk (so a stream can be cancelled or resumed while it runs). */
  delayMs?: number;
  /** Drop the first connection of a stream after this many events (the SDK resumes). */
  cutAfter?: number;
  /** Fail the execution with this error type after the content. */
  errorType?: string;
}

/** An injected error (`fail`). */
export interface FailOptions {
  /** How many matching requests it answers (default 1). */
  times?: number;
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number;
  /** Only requests whose path contains this. */
  path?: string;
  /** Only requests with this method. */
  method?: string;
  message?: string;
  details?: unknown;
}

export interface FakeGatewayOptions {
  apiKey?: string;
  tenantId?: string;
  /** What every model name resolves to (default `fake-model`). */
  modelResolved?: string;
  /** The provider named in answers (default `fake`). */
  provider?: string;
}

interface Reply extends ReplyOptions {
  match: string | null;
  /** null: echo the prompt. */
  text: string | null;
}

interface Failure {
  status: number;
  errorType: string;
  message: string;
  times: number;
  retryAfter?: number;
  path?: string;
  method?: string;
  details?: unknown;
}

interface Run {
  id: string;
  agentId: string | null;
  kind: "agent_execution" | "chat_completion";
  stream: boolean;
  modelRequested: string;
  prompt: string;
  reply: Reply;
  requestMetadata: Json;
  status: "running" | "completed" | "failed" | "cancelled";
  startedAt: number;
  completedAt: number | null;
  text: string;
  usage: Json | null;
  error: Json | null;
  events: Array<{ id: number; event: string; data: Json }>;
  cancelRequested: boolean;
  onDisconnect: string;
  includeUsage: boolean;
  waiters: Array<() => void>;
  /** The data subject (`subject`, or OpenAI's `user`). */
  subject: string | null;
  /** The request as history's `input` shows it. */
  request: Json;
  /** Its subject was erased. */
  erased: boolean;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
    readonly extra: { details?: unknown; retryAfter?: number; executionId?: string; param?: string } = {},
  ) {
    super(message);
  }

  asObject(): Json {
    const out: Json = { type: this.errorType, message: this.message };
    if (this.extra.executionId) out.execution_id = this.extra.executionId;
    if (this.extra.retryAfter !== undefined) out.retry_after = this.extra.retryAfter;
    if (this.extra.details !== undefined) out.details = this.extra.details;
    return out;
  }
}

const notFound = (what: string) => new Refusal(404, "not_found", `${what} not found`);
const invalid = (loc: string, message: string) =>
  new Refusal(400, "invalid_request", `${loc}: ${message}`, { details: [{ loc, message }], param: loc.replace(/^body\./, "") });
const words = (text: string): string[] => text.match(/\s*\S+\s*/g) ?? [text];
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const tag = (value: unknown) => (value === undefined || value === null ? null : String(value));
const frame = (id: number | null, event: string, data: Json) =>
  `${id !== null ? `id: ${id}\n` : ""}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const dataLine = (body: Json) => `data: ${JSON.stringify(body)}\n\n`;
const without = (body: Json, ...names: string[]): Json => Object.fromEntries(Object.entries(body).filter(([k]) => !names.includes(k)));

/** A data subject id as the gateway takes it: a string of 1 to 256 characters. */
function subjectOf(value: unknown, loc = "path.subject"): string {
  if (typeof value !== "string") throw invalid(loc, "Input should be a valid string");
  if (value.length < 1 || value.length > 256) throw invalid(loc, "String should have 1 to 256 characters");
  return value;
}

/** `PUT /api/v1/retention`'s body, checked as the gateway checks it. */
function retentionOf(body: any): Json {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw invalid("body", "Input should be a valid dictionary");
  for (const name of Object.keys(body)) {
    if (name !== "payload_days" && name !== "metrics_days") throw invalid(`body.${name}`, "Extra inputs are not permitted");
  }
  const days = { payload_days: body.payload_days, metrics_days: body.metrics_days ?? null };
  for (const [name, value] of Object.entries(days)) {
    if (value === null && name === "metrics_days") continue;
    if (!Number.isInteger(value)) throw invalid(`body.${name}`, "Input should be a valid integer");
    if (value < 1 || value > 36500) throw invalid(`body.${name}`, "Input should be between 1 and 36500");
  }
  if (days.metrics_days !== null && days.metrics_days < days.payload_days) throw invalid("body", "metrics_days must be at least payload_days");
  return days;
}

function lastUserText(messages: unknown[]): string {
  for (const message of [...messages].reverse()) {
    const m = message as Json;
    if (m?.role !== "user") continue;
    if (Array.isArray(m.content)) return m.content.map((p: Json) => p?.text ?? "").join("");
    return String(m.content ?? "");
  }
  return "";
}

function openaiUsage(usage: Json | null): Json {
  return {
    prompt_tokens: usage?.prompt_tokens ?? 0, completion_tokens: usage?.completion_tokens ?? 0, total_tokens: usage?.total_tokens ?? 0,
    prompt_tokens_details: { cached_tokens: usage?.cached_tokens ?? 0 },
  };
}

/** The fake gateway. `await FakeGateway.start()`, then `gw.client()`; `await gw.close()`. */
export class FakeGateway {
  readonly apiKey: string;
  readonly tenantId: string;
  readonly modelResolved: string;
  readonly provider: string;
  /** Every request received, oldest first. */
  readonly requests: RecordedRequest[] = [];
  private server: Server | null = null;
  private baseUrl = "";
  private closing = false;
  private readonly agentsById = new Map<string, Json>();
  private readonly runs = new Map<string, Run>();
  private defaultReply: Reply = { match: null, text: null };
  private readonly replies: Reply[] = [];
  private readonly failures: Failure[] = [];
  private readonly idempotent = new Map<string, [number, Json]>();
  private budget: { limit: number; warningThreshold: number } | null = null;
  private retention: Json | null = null;
  private schema: Promise<LoadedSchema> | null = null;

  constructor(options: FakeGatewayOptions = {}) {
    this.apiKey = options.apiKey ?? `cbk_test_${randomBytes(8).toString("hex")}`;
    this.tenantId = options.tenantId ?? randomUUID();
    this.modelResolved = options.modelResolved ?? "fake-model";
    this.provider = options.provider ?? "fake";
  }

  /** A fake listening on a free port of 127.0.0.1. */
  static async start(options: FakeGatewayOptions = {}): Promise<FakeGateway> {
    const gw = new FakeGateway(options);
    await gw.listen();
    return gw;
  }

  /** The base URL, e.g. `http://127.0.0.1:53121`. */
  get url(): string {
    if (!this.server) throw new Error("the fake gateway is not running: use FakeGateway.start()");
    return this.baseUrl;
  }

  async listen(): Promise<void> {
    if (this.server) return;
    this.closing = false;
    const server = createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("no TCP address");
    this.baseUrl = `http://127.0.0.1:${address.port}`;
    this.server = server;
  }

  /** Stop serving; open streams end. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.closing = true;
    for (const run of this.runs.values()) this.wake(run);
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** A `Client` of the fake's tenant; `options` override (e.g. `{ maxRetries: 0 }`). */
  client(options: ClientOptions = {}): Client {
    return new Client({ baseUrl: this.url, tenantId: this.tenantId, apiKey: this.apiKey, ...options });
  }

  // ---- scripting ---------------------------------------------------------------------

  /** The answer to every prompt no `replyFor` matches (null: `"Echo: <prompt>"`). */
  reply(text: string | null = null, options: ReplyOptions = {}): void {
    this.defaultReply = { ...options, match: null, text };
  }

  /** The answer to prompts containing `promptSubstring` (first added, first used). */
  replyFor(promptSubstring: string, text: string | null = null, options: ReplyOptions = {}): void {
    this.replies.push({ ...options, match: promptSubstring, text });
  }

  /** Answer the next `times` matching requests (never `/health`) with this error. */
  fail(status: number, errorType: string, options: FailOptions = {}): void {
    const details = options.details ?? (errorType === "rate_limited" ? { limit: "requests_per_minute" } : undefined);
    this.failures.push({
      status, errorType, message: options.message ?? `${errorType} (injected by FakeGateway)`, times: options.times ?? 1,
      retryAfter: options.retryAfter, path: options.path, method: options.method?.toUpperCase(), details,
    });
  }

  /** The recorded requests whose path contains `pathPart` (and with `method`). */
  requestsTo(pathPart: string, method?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.includes(pathPart) && (!method || r.method === method.toUpperCase()));
  }

  /** The tenant's agents as `GET /api/v1/agents` shows them. */
  get agents(): Json[] {
    return [...this.agentsById.values()].map((a) => ({ ...a }));
  }

  /** Every execution as history shows it, oldest first. */
  get executions(): Json[] {
    return [...this.runs.values()].map((r) => this.history(r));
  }

  /** Forget replies, failures, recorded requests, agents, executions and retention. */
  reset(): void {
    this.requests.length = 0;
    this.agentsById.clear();
    this.runs.clear();
    this.replies.length = 0;
    this.failures.length = 0;
    this.idempotent.clear();
    this.defaultReply = { match: null, text: null };
    this.budget = null;
    this.retention = null;
  }

  // ---- HTTP --------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
    }
    const query: Record<string, string[]> = {};
    for (const [k, v] of url.searchParams) (query[k] ??= []).push(v);
    let body: any = null;
    let badJson = false;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
      }
    }
    this.requests.push({ method, path: url.pathname, query, headers, json: body });
    const openai = url.pathname.startsWith("/v1/");
    try {
      if (badJson) throw invalid("body", "JSON decode error");
      this.injected(method, url.pathname);
      await this.route(res, method, url.pathname, query, headers, body);
    } catch (error) {
      if (error instanceof Refusal) this.sendError(res, error, openai);
      else if (!res.headersSent) this.sendError(res, new Refusal(500, "internal_error", String((error as Error)?.message ?? error)), openai);
      else res.destroy();
    }
  }

  private injected(method: string, path: string): void {
    if (path === "/health" || path === "/ready") return;
    const index = this.failures.findIndex((f) => (!f.path || path.includes(f.path)) && (!f.method || f.method === method));
    if (index === -1) return;
    const failure = this.failures[index];
    if (--failure.times <= 0) this.failures.splice(index, 1);
    let executionId: string | undefined;
    const match = path.match(/^\/api\/v1\/agents\/([^/]+)\/execute(\/stream)?$/);
    if (OUTCOME_TYPES.has(failure.errorType) && match) {
      const agentId = decodeURIComponent(match[1]);
      const run = this.newRun(agentId, "agent_execution", Boolean(match[2]), this.agentsById.get(agentId)?.model ?? "cb:smart-chat", "", {});
      run.status = "failed";
      run.completedAt = Date.now();
      run.error = { type: failure.errorType, message: failure.message };
      executionId = run.id;
    }
    throw new Refusal(failure.status, failure.errorType, failure.message, { details: failure.details, retryAfter: failure.retryAfter, executionId });
  }

  private sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const data = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, { ...(body === undefined ? {} : { "Content-Type": "application/json" }), "Content-Length": Buffer.byteLength(data), ...headers });
    res.end(data);
  }

  private sendError(res: ServerResponse, err: Refusal, openai: boolean): void {
    if (res.headersSent) return void res.destroy();
    const headers: Record<string, string> = {};
    if (err.extra.retryAfter !== undefined) headers["Retry-After"] = String(Math.max(0, Math.round(err.extra.retryAfter)));
    if (err.errorType === "rate_limited") Object.assign(headers, RATE_HEADERS, { "X-RateLimit-Remaining": "0" });
    if (openai) {
      const status = err.errorType === "model_not_found" ? 404 : err.status;
      const type = OPENAI_TYPES[status] ?? (status >= 500 ? "server_error" : "invalid_request_error");
      if (err.extra.executionId) headers["x-cb-execution-id"] = err.extra.executionId;
      return this.sendJson(res, status, { error: { message: err.message, type, param: err.extra.param ?? null, code: err.errorType } }, headers);
    }
    const body: Json = { error: err.asObject() };
    if (err.extra.executionId) body.execution_id = err.extra.executionId;
    this.sendJson(res, err.status, body, headers);
  }

  /** Check the credential (and the tenant off `/v1/*`); false when none was sent where none
   * is needed (the public `GET /v1/models`, GraphQL's `health`). */
  private authenticate(headers: Record<string, string>, path: string): boolean {
    const authorization = headers.authorization;
    if (authorization === undefined && (path === "/v1/models" || path === "/graphql")) return false;
    if (!authorization || !/^bearer /i.test(authorization)) throw new Refusal(401, "authentication_failed", "missing Authorization: Bearer <api key>");
    if (authorization.slice(7).trim() !== this.apiKey) throw new Refusal(401, "authentication_failed", "unknown, revoked or expired API key");
    const tenant = headers["x-tenant-id"];
    if (tenant === undefined && !path.startsWith("/v1/")) throw new Refusal(400, "missing_tenant", "missing X-Tenant-ID header");
    if (tenant !== undefined && tenant !== this.tenantId) throw new Refusal(403, "permission_denied", "the API key does not belong to this tenant");
    return true;
  }

  private async route(res: ServerResponse, method: string, path: string, query: Record<string, string[]>, headers: Record<string, string>, body: any): Promise<void> {
    if ((path === "/health" || path === "/ready") && method === "GET") return this.sendJson(res, 200, { status: "ok" });
    const authed = this.authenticate(headers, path);
    if (path === "/graphql" && method === "POST") return this.sendJson(res, 200, await this.graphql(body, authed));
    if (path === "/v1/models" && method === "GET") return this.sendJson(res, 200, this.openaiModels());
    if (path === "/v1/chat/completions" && method === "POST") return this.chatCompletion(res, body);
    if (path === "/api/v1/agents" && method === "POST") return this.createAgentRoute(res, headers, body);
    if (path === "/api/v1/agents" && method === "GET") return this.sendJson(res, 200, { agents: this.agents });
    let m = path.match(/^\/api\/v1\/agents\/([^/]+)$/);
    if (m) {
      const id = decodeURIComponent(m[1]);
      if (method === "GET") return this.sendJson(res, 200, this.agent(id));
      if (method === "PATCH") return this.sendJson(res, 200, this.updateAgent(id, body ?? {}));
      if (method === "DELETE") return this.sendJson(res, 200, this.deleteAgent(id));
    }
    m = path.match(/^\/api\/v1\/agents\/([^/]+)\/execute(\/stream)?$/);
    if (m && method === "POST") return this.execute(res, decodeURIComponent(m[1]), body, headers, Boolean(m[2]));
    if (path === "/api/v1/executions" && method === "GET") return this.sendJson(res, 200, this.listExecutions(query));
    m = path.match(/^\/api\/v1\/executions\/([^/]+)(\/stream|\/cancel)?$/);
    if (m) {
      const id = decodeURIComponent(m[1]);
      if (!m[2] && method === "GET") return this.sendJson(res, 200, this.history(this.run(id)));
      if (m[2] === "/stream" && method === "GET") return this.resume(res, id, headers, query);
      if (m[2] === "/cancel" && method === "POST") return this.sendJson(res, 200, await this.cancel(id));
    }
    if (path === "/api/v1/models" && method === "GET") return this.models(res, headers);
    if (path === "/api/v1/tools" && method === "GET") return this.sendJson(res, 200, { tools: [] });
    if (path === "/api/v1/providers" && method === "GET") return this.sendJson(res, 200, { providers: [this.providerView()] });
    m = path.match(/^\/api\/v1\/subjects\/([^/]+)(\/export)?$/);
    if (m) {
      const subject = subjectOf(decodeURIComponent(m[1]));
      if (method === "GET" && m[2]) return this.exportSubject(res, subject);
      if (method === "GET") return this.sendJson(res, 200, this.listSubject(subject));
      if (method === "DELETE" && !m[2]) return this.sendJson(res, 200, this.eraseSubject(subject));
    }
    if (path === "/api/v1/retention") {
      if (method === "GET") return this.sendJson(res, 200, { retention: this.retention });
      if (method === "PUT") return this.sendJson(res, 200, { retention: (this.retention = retentionOf(body)) });
      if (method === "DELETE") return this.sendJson(res, 200, { retention: (this.retention = null) });
    }
    throw new Refusal(404, "not_found", `FakeGateway does not serve ${method} ${path}`);
  }

  // ---- agents ------------------------------------------------------------------------

  private agent(id: string): Json {
    const agent = this.agentsById.get(id);
    if (!agent) throw notFound(`agent ${id}`);
    return { ...agent };
  }

  private newAgent(body: any): Json {
    if (!body || typeof body !== "object") throw invalid("body", "Input should be a valid dictionary");
    for (const name of ["name", "model"]) {
      if (typeof body[name] !== "string" || !body[name]) throw invalid(`body.${name}`, "Field required");
    }
    const now = new Date().toISOString();
    const parameters = Object.fromEntries(Object.entries(body.parameters ?? {}).filter(([, v]) => v !== null && v !== undefined));
    const agent: Json = {
      id: randomUUID(), tenant_id: this.tenantId, name: body.name, description: body.description ?? "", model: body.model,
      system_prompt: body.system_prompt ?? "", user_template: body.user_template ?? "{prompt}", parameters,
      tools: [...(body.tools ?? [])], capabilities: [...(body.capabilities ?? [])], tags: [...(body.tags ?? [])],
      provider_type: body.provider_type ?? null, context_instructions: body.context_instructions ?? null,
    };
    for (const name of ["cache", "guardrails"]) if (body[name] != null) agent[name] = body[name];
    Object.assign(agent, { version: 1, created_at: now, updated_at: now });
    this.agentsById.set(agent.id, agent);
    return { ...agent };
  }

  private createAgentRoute(res: ServerResponse, headers: Record<string, string>, body: any): void {
    const key = headers["idempotency-key"];
    const seen = key ? this.idempotent.get(`agents:${key}`) : undefined;
    if (seen) return this.sendJson(res, seen[0], seen[1], { "Idempotent-Replayed": "true" });
    const agent = this.newAgent(body);
    if (key) this.idempotent.set(`agents:${key}`, [201, agent]);
    this.sendJson(res, 201, agent);
  }

  private updateAgent(id: string, changes: Json): Json {
    const agent = this.agentsById.get(id);
    if (!agent) throw notFound(`agent ${id}`);
    for (const [name, value] of Object.entries(changes)) {
      if (value === null || value === undefined) continue;
      agent[name] = name === "parameters" ? { ...agent.parameters, ...value } : value;
    }
    agent.version += 1;
    agent.updated_at = new Date().toISOString();
    return { ...agent };
  }

  private deleteAgent(id: string): Json {
    if (!this.agentsById.delete(id)) throw notFound(`agent ${id}`);
    return { id, deleted: true };
  }

  // ---- executions --------------------------------------------------------------------

  private replyTo(prompt: string): Reply {
    return this.replies.find((r) => r.match !== null && prompt.includes(r.match)) ?? this.defaultReply;
  }

  private newRun(
    agentId: string | null, kind: Run["kind"], stream: boolean, model: string, prompt: string, metadata: Json | null | undefined,
    subject: string | null = null, request: Json = {},
  ): Run {
    const run: Run = {
      id: randomUUID(), agentId, kind, stream, modelRequested: model, prompt, reply: this.replyTo(prompt),
      requestMetadata: { ...(metadata ?? {}) }, status: "running", startedAt: Date.now(), completedAt: null, text: "",
      usage: null, error: null, events: [], cancelRequested: false, onDisconnect: "cancel", includeUsage: true, waiters: [],
      subject, request: { ...request }, erased: false,
    };
    this.runs.set(run.id, run);
    return run;
  }

  private run(id: string): Run {
    const run = this.runs.get(id);
    if (!run) throw notFound(`execution ${id}`);
    return run;
  }

  private usageOf(run: Run, pieces: number): Json {
    const scripted = run.reply.usage ?? {};
    const prompt = scripted.prompt_tokens ?? Math.max(1, Math.floor(run.prompt.length / 4));
    const completion = scripted.completion_tokens ?? Math.max(1, pieces);
    return {
      prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion,
      cached_tokens: scripted.cached_tokens ?? 0, estimated: false, cost_usd: scripted.cost_usd ?? (prompt * 1 + completion * 2) / 1e6,
    };
  }

  /** The execution's result document (`execute`'s answer, `execution_complete`). */
  private result(run: Run): Json {
    const completed = run.status === "completed";
    const response: Json = { content: run.text, tool_calls: [] };
    if (completed) Object.assign(response, { finish_reason: "stop", tool_results: [] });
    return {
      execution_id: run.id, agent_id: run.agentId, status: run.status, response, usage: run.usage,
      metadata: {
        model_requested: run.modelRequested, model_resolved: this.modelResolved, provider: this.provider, provider_model: this.modelResolved,
        duration_ms: (run.completedAt ?? Date.now()) - run.startedAt, attempts: 1, attempt_log: [], fallback_used: false,
        dropped_parameters: [], adjusted_parameters: {},
        routing: {
          requested: run.modelRequested, strategy: "balanced", resolved: this.modelResolved, fallbacks: [],
          candidates: [{ model: this.modelResolved, skipped: null }],
        },
        request_metadata: run.requestMetadata,
      },
      error: run.error,
    };
  }

  /** The execution as `GET /api/v1/executions/{id}` shows it. */
  private history(run: Run): Json {
    const usage = run.usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    const view: Json = {
      execution_id: run.id, kind: run.kind, agent_id: run.agentId, status: run.status, model_requested: run.modelRequested,
      model_resolved: this.modelResolved, provider: this.provider, stream: run.stream, started_at: run.startedAt / 1000,
      completed_at: run.completedAt === null ? null : run.completedAt / 1000,
      usage: { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens, cost_usd: usage.cost_usd ?? 0 },
      duration_ms: run.completedAt === null ? null : run.completedAt - run.startedAt, error: run.error,
      resource_id: tag(run.requestMetadata.resource_id), state_id: tag(run.requestMetadata.state_id), retry_count: 0,
    };
    if (run.status !== "running") {
      const result = this.result(run);
      view.response = result.response;
      view.metadata = result.metadata;
    } else {
      view.response = { content: run.text, tool_calls: [] };
      view.last_event_id = run.events.length;
    }
    if (run.erased) {
      // what the gateway shows once the subject's keys are gone
      view.response = { ...view.response, content: ERASED, tool_calls: [] };
      if (run.error) view.error = { ...run.error, message: ERASED };
      if (view.metadata) view.metadata = { ...view.metadata, payload_erased: true };
      view.payload = "erased";
    }
    return view;
  }

  // ---- subjects, retention -----------------------------------------------------------

  /** The subject's executions, newest first. */
  private subjectRuns(subject: string): Run[] {
    return [...this.runs.values()].filter((r) => r.subject === subject).sort((a, b) => b.startedAt - a.startedAt);
  }

  /** History's view with the request (`input`), as the subject routes show it. */
  private subjectView(run: Run): Json {
    return { ...this.history(run), input: run.erased ? { ...ERASED_INPUT } : { ...run.request } };
  }

  /** The gateway's one-way reference of a subject. */
  private subjectRef(subject: string): string {
    return createHash("sha256").update(`${this.tenantId}\u0000${subject}`).digest("hex").slice(0, 32);
  }

  private listSubject(subject: string): Json {
    return { subject_ref: this.subjectRef(subject), executions: this.subjectRuns(subject).map((r) => this.subjectView(r)) };
  }

  private exportSubject(res: ServerResponse, subject: string): void {
    const runs = this.subjectRuns(subject);
    const lines: Json[] = runs.map((r) => ({ kind: "execution", data: this.subjectView(r) }));
    for (const r of runs) {
      for (const e of r.events) lines.push({ kind: "event", aggregate_id: r.id, version: e.id, topic: e.event, data: r.erased ? { ...ERASED_INPUT } : e.data });
    }
    const data = lines.map((line) => `${JSON.stringify(line)}\n`).join("");
    res.writeHead(200, { "Content-Type": "application/x-ndjson", "Content-Length": Buffer.byteLength(data) });
    res.end(data);
  }

  /** Mark the subject's executions erased; one key per hour of start not yet gone. */
  private eraseSubject(subject: string): Json {
    const runs = this.subjectRuns(subject);
    const keys = new Set(runs.filter((r) => !r.erased).map((r) => Math.floor(r.startedAt / 3_600_000)));
    for (const run of runs) run.erased = true;
    return { subject_ref: this.subjectRef(subject), executions: runs.length, keys_destroyed: keys.size };
  }

  private listExecutions(query: Record<string, string[]>): Json {
    const one = (name: string) => query[name]?.[0];
    const limit = Number(one("limit") ?? 50);
    const before = one("before") !== undefined ? Number(one("before")) : null;
    const items = [...this.runs.values()]
      .sort((a, b) => b.startedAt - a.startedAt)
      .filter((r) => (!one("agent_id") || r.agentId === one("agent_id")) && (!one("status") || r.status === one("status")) &&
        (!one("kind") || r.kind === one("kind")) && (before === null || r.startedAt / 1000 < before))
      .slice(0, limit)
      .map((r) => this.history(r));
    return { executions: items, next_before: items.length === limit ? items[items.length - 1].started_at : null };
  }

  private wake(run: Run): void {
    const waiters = run.waiters.splice(0);
    for (const wake of waiters) wake();
  }

  private emit(run: Run, event: string, data: Json): void {
    run.events.push({ id: run.events.length + 1, event, data });
    this.wake(run);
  }

  private finishCancelled(run: Run): void {
    if (run.status !== "running") return;
    run.status = "cancelled";
    run.completedAt = Date.now();
    run.usage ??= this.usageOf(run, words(run.text).length);
    run.error = { type: "execution_cancelled", message: `execution ${run.id} was cancelled`, execution_id: run.id };
    this.emit(run, "error", { ...run.error });
  }

  /** Run `run` to its end, emitting its events. */
  private async produce(run: Run): Promise<void> {
    const reply = run.reply;
    this.emit(run, "execution_start", {
      execution_id: run.id, agent_id: run.agentId, model_requested: run.modelRequested, model_resolved: this.modelResolved, provider: this.provider,
    });
    const content = reply.text ?? (reply.chunks ? reply.chunks.join("") : `Echo: ${run.prompt}`);
    const pieces = reply.chunks ?? words(content);
    for (const piece of pieces) {
      if (reply.delayMs) await sleep(reply.delayMs);
      if (run.cancelRequested || this.closing) return this.finishCancelled(run);
      run.text += piece;
      this.emit(run, "content_chunk", { execution_id: run.id, delta: piece });
    }
    if (run.cancelRequested) return this.finishCancelled(run);
    run.usage = this.usageOf(run, pieces.length);
    if (run.includeUsage) this.emit(run, "usage_update", { execution_id: run.id, ...run.usage });
    run.completedAt = Date.now();
    if (reply.errorType) {
      run.status = "failed";
      run.error = { type: reply.errorType, message: `${reply.errorType} (scripted by FakeGateway)`, execution_id: run.id };
      return this.emit(run, "error", { ...run.error });
    }
    run.status = "completed";
    this.emit(run, "execution_complete", this.result(run));
  }

  private failure(run: Run): Refusal {
    const error = run.error!;
    return new Refusal(STATUSES[error.type] ?? 500, error.type, error.message, { executionId: run.id });
  }

  private async execute(res: ServerResponse, agentId: string, body: any, headers: Record<string, string>, stream: boolean): Promise<void> {
    const agent = this.agent(agentId);
    if (!body || typeof body.prompt !== "string") throw invalid("body.prompt", "Field required");
    if (!body.prompt) throw invalid("body.prompt", "String should have at least 1 character");
    const subject = body.subject === undefined || body.subject === null ? null : subjectOf(body.subject, "body.subject");
    const key = headers["idempotency-key"] ? `${stream ? "stream" : "execute"}:${headers["idempotency-key"]}` : null;
    const seen = key ? this.idempotent.get(key) : undefined;
    if (seen && !stream) return this.sendJson(res, seen[0], seen[1], { "Idempotent-Replayed": "true", ...RATE_HEADERS });
    if (seen) return this.serveStream(res, this.run(seen[1].execution_id), 0, 15, false);
    const run = this.newRun(agentId, "agent_execution", stream, agent.model, body.prompt, body.metadata, subject, without(body, "metadata", "subject", "stream_options"));
    if (key) this.idempotent.set(key, [200, { execution_id: run.id }]);
    if (!stream) {
      await this.produce(run);
      if (run.error) throw this.failure(run);
      const result = this.result(run);
      if (key) this.idempotent.set(key, [200, result]);
      return this.sendJson(res, 200, result, RATE_HEADERS);
    }
    const options = body.stream_options ?? {};
    run.onDisconnect = options.on_disconnect ?? "cancel";
    run.includeUsage = options.include_usage !== false;
    void this.produce(run);
    return this.serveStream(res, run, 0, Number(options.heartbeat_s ?? 15), true);
  }

  private resume(res: ServerResponse, id: string, headers: Record<string, string>, query: Record<string, string[]>): Promise<void> | void {
    const run = this.run(id);
    if (!run.stream) throw new Refusal(409, "conflict", `execution ${id} was not streamed: nothing to resume`, { executionId: id });
    const position = headers["last-event-id"] || query.last_event_id?.[0] || "0";
    if (!/^\d+$/.test(position)) throw invalid("Last-Event-ID", "must be a non-negative integer event id");
    if (Number(position) > run.events.length && run.status !== "running") {
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
      const error = { type: "resume_unavailable", message: `no event after ${position}: the stream has ${run.events.length}`, execution_id: id, details: { replayable_to: run.events.length } };
      return void res.end(frame(null, "error", error));
    }
    return this.serveStream(res, run, Number(position), Number(query.heartbeat_s?.[0] ?? 15), false);
  }

  /** Send `run`'s events after `position`, live until its terminal event. */
  private async serveStream(res: ServerResponse, run: Run, position: number, heartbeatS: number, first: boolean): Promise<void> {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no", ...RATE_HEADERS });
    res.on("error", () => {}); // a client gone mid-write: the close handler below says so
    let gone = false;
    res.on("close", () => {
      gone = true;
      if (!res.writableFinished && run.onDisconnect === "cancel") run.cancelRequested = true;
      this.wake(run);
    });
    const heartbeat = setInterval(() => void (res.destroyed || res.write(": heartbeat\n\n")), Math.max(50, heartbeatS * 1000));
    const cutAfter = first ? run.reply.cutAfter : undefined;
    let sent = 0;
    try {
      for (;;) {
        while (position < run.events.length) {
          const event = run.events[position];
          res.write(frame(event.id, event.event, event.data));
          position = event.id;
          sent += 1;
          if (event.event === "execution_complete" || event.event === "error") return void res.end();
          if (cutAfter !== undefined && sent >= cutAfter) {
            // what was written goes out, then the connection ends mid-body: the client resumes
            return void res.socket?.end();
          }
        }
        if (gone || this.closing || run.status !== "running") return void res.end();
        await new Promise<void>((resolve) => run.waiters.push(resolve));
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  private async cancel(id: string): Promise<Json> {
    const run = this.run(id);
    if (run.status === "running" && run.stream) run.cancelRequested = true;
    const deadline = Date.now() + 5000;
    while (run.status === "running" && Date.now() < deadline) await sleep(10);
    if (run.status !== "cancelled") {
      throw new Refusal(409, "conflict", `execution ${id} is ${run.status}, not a running stream: only a running streamed execution can be cancelled by id`, {
        executionId: id, details: { status: run.status },
      });
    }
    return this.history(run);
  }

  // ---- models, providers -------------------------------------------------------------

  private models(res: ServerResponse, headers: Record<string, string>): void {
    const models: Json[] = VIRTUAL_MODELS.map((id) => ({
      id, kind: "virtual", source: "platform", strategy: "balanced", task: null, description: null, candidates: [this.modelResolved],
      resolves_to: this.modelResolved, fallbacks: [], skipped: [], provider: this.provider, capabilities: ["streaming", "tools"],
      input_price_per_mtok: 1, output_price_per_mtok: 2, cached_input_price_per_mtok: null,
    }));
    models.push({
      id: this.modelResolved, kind: "concrete", provider: this.provider, provider_model: this.modelResolved, capabilities: ["streaming", "tools"],
      context_window: 128000, max_output_tokens: 16384, input_price_per_mtok: 1, output_price_per_mtok: 2, available: true, breaker: "closed",
    });
    const etag = `"${Buffer.from(JSON.stringify(models)).toString("base64").slice(-16)}"`;
    const cache = { ETag: etag, "Cache-Control": "private, max-age=30" };
    if (headers["if-none-match"] === etag) {
      res.writeHead(304, cache);
      return void res.end();
    }
    this.sendJson(res, 200, { models }, cache);
  }

  private openaiModels(): Json {
    const data = [...VIRTUAL_MODELS, this.modelResolved].map((id) => ({
      id, object: "model", created: 0, owned_by: VIRTUAL_MODELS.includes(id) ? "circuit-breaker" : this.provider,
    }));
    return { object: "list", data };
  }

  private providerView(): Json {
    return {
      id: this.provider, type: "openai", base_url: null, models: [{ id: this.modelResolved, context_window: 128000 }],
      health: { healthy: true, breaker: "closed", error_rate: 0, average_latency_ms: 1, consecutive_failures: 0, requests: 0, last_error: null, last_check: null },
    };
  }

  // ---- /v1/chat/completions ----------------------------------------------------------

  private async chatCompletion(res: ServerResponse, body: any): Promise<void> {
    if (!body || typeof body.model !== "string") throw invalid("body.model", "Field required");
    if (!Array.isArray(body.messages) || body.messages.length === 0) throw invalid("body.messages", "Field required");
    let model: string = body.model;
    let agentId: string | null = null;
    if (model.startsWith("agent:")) {
      agentId = model.slice("agent:".length);
      model = this.agent(agentId).model;
    }
    const user = body.user ? subjectOf(body.user, "body.user") : null; // "": no subject
    const run = this.newRun(agentId, "chat_completion", Boolean(body.stream), model, lastUserText(body.messages), body.metadata, user, without(body, "metadata", "user"));
    const id = `chatcmpl-${run.id.replaceAll("-", "")}`;
    const headers = { "x-cb-execution-id": run.id, "x-cb-model-resolved": this.modelResolved, "x-cb-provider": this.provider, ...RATE_HEADERS };
    const created = Math.floor(run.startedAt / 1000);
    if (!body.stream) {
      await this.produce(run);
      if (run.error) throw this.failure(run);
      return this.sendJson(res, 200, {
        id, object: "chat.completion", created, model: this.modelResolved,
        choices: [{ index: 0, message: { role: "assistant", content: run.text, refusal: null }, finish_reason: "stop", logprobs: null }],
        usage: openaiUsage(run.usage), system_fingerprint: null,
      }, headers);
    }
    const includeUsage = Boolean(body.stream_options?.include_usage);
    const head = { id, object: "chat.completion.chunk", created, model: this.modelResolved, system_fingerprint: null };
    const chunk = (delta: Json, finish: string | null = null) =>
      dataLine({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...(includeUsage ? { usage: null } : {}) });
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", ...headers });
    res.write(chunk({ role: "assistant", content: "", refusal: null }));
    let seen = 0;
    const produced = this.produce(run);
    for (;;) {
      for (const event of run.events.slice(seen)) if (event.event === "content_chunk") res.write(chunk({ content: event.data.delta }));
      seen = run.events.length;
      if (run.status !== "running" || this.closing) break;
      await new Promise<void>((resolve) => run.waiters.push(resolve));
    }
    await produced;
    if (run.error) {
      return void res.end(dataLine({ error: { message: run.error.message, type: "server_error", param: null, code: run.error.type } }));
    }
    let out = chunk({}, "stop");
    if (includeUsage) out += dataLine({ ...head, choices: [], usage: openaiUsage(run.usage) });
    res.end(out + "data: [DONE]\n\n");
  }

  // ---- GraphQL -----------------------------------------------------------------------

  private async graphql(body: any, authed: boolean): Promise<Json> {
    if (!body || typeof body.query !== "string") throw invalid("body.query", "Field required");
    this.schema ??= this.buildSchema();
    let loaded: LoadedSchema;
    try {
      loaded = await this.schema;
    } catch (error) {
      this.schema = null;
      throw new Refusal(501, "not_implemented", `FakeGateway serves GraphQL with the \`graphql\` package: npm install graphql (${(error as Error).message})`);
    }
    const result = await loaded.graphql.graphql({
      schema: loaded.schema, source: body.query, variableValues: body.variables ?? {}, operationName: body.operationName ?? undefined,
      contextValue: { authed },
    });
    return JSON.parse(JSON.stringify(result));
  }

  private async buildSchema(): Promise<LoadedSchema> {
    const graphql = await import("graphql");
    const sdl = await readFile(new URL("../schema/schema.graphql", import.meta.url), "utf8");
    const schema = graphql.buildSchema(sdl);
    const resolvers = new GraphQLResolvers(this, this.graphqlState());
    for (const typeName of ["Query", "Mutation"]) {
      const type = schema.getType(typeName) as import("graphql").GraphQLObjectType;
      for (const [name, field] of Object.entries(type.getFields())) {
        const resolve = (resolvers as unknown as Record<string, (args: Json) => unknown>)[name];
        field.resolve = (_source, args, context: { authed: boolean }) => {
          if (name !== "health" && !context.authed) {
            throw new graphql.GraphQLError("authentication required", { extensions: { code: "UNAUTHENTICATED", type: "authentication_failed" } });
          }
          if (typeof resolve !== "function" || name === "constructor") throw new graphql.GraphQLError(`FakeGateway does not serve ${typeName}.${name}`);
          const typed = (error: unknown): never => {
            if (!(error instanceof Refusal)) throw error;
            const code = error.errorType === "invalid_request" ? "BAD_USER_INPUT" : error.errorType.toUpperCase();
            const extensions: Json = { code, type: error.errorType };
            if (error.extra.executionId) extensions.executionId = error.extra.executionId;
            throw new graphql.GraphQLError(error.message, { extensions });
          };
          try {
            const out = resolve.call(resolvers, args);
            return out instanceof Promise ? out.catch(typed) : out;
          } catch (error) {
            return typed(error);
          }
        };
      }
    }
    return { graphql, schema };
  }

  /** What the GraphQL resolvers read and change. */
  private graphqlState(): GraphQLState {
    return {
      agents: this.agentsById, runs: this.runs, getBudget: () => this.budget,
      setBudget: (b: { limit: number; warningThreshold: number }) => void (this.budget = b),
      newAgent: (body: Json) => this.newAgent(body), agent: (id: string) => this.agent(id),
      updateAgent: (id: string, changes: Json) => this.updateAgent(id, changes), deleteAgent: (id: string) => this.deleteAgent(id),
      chat: async (model: string, messages: unknown[], user?: string | null) => {
        let agentId: string | null = null;
        if (model.startsWith("agent:")) {
          agentId = model.slice("agent:".length);
          model = this.agent(agentId).model;
        }
        const run = this.newRun(agentId, "chat_completion", false, model, lastUserText(messages), null, user ? subjectOf(user, "user") : null, { messages });
        await this.produce(run);
        if (run.error) throw this.failure(run);
        return run;
      },
    };
  }
}

interface GraphQLState {
  agents: Map<string, Json>;
  runs: Map<string, Run>;
  getBudget: () => { limit: number; warningThreshold: number } | null;
  setBudget: (budget: { limit: number; warningThreshold: number }) => void;
  newAgent: (body: Json) => Json;
  agent: (id: string) => Json;
  updateAgent: (id: string, changes: Json) => Json;
  deleteAgent: (id: string) => Json;
  chat: (model: string, messages: unknown[], user?: string | null) => Promise<Run>;
}

/** The GraphQL resolvers: one method per root field, over the fake's state. */
class GraphQLResolvers {
  constructor(private readonly gw: FakeGateway, private readonly state: GraphQLState) {}

  private agentNode(a: Json): Json {
    const gw = this.gw;
    const params = a.parameters ?? {};
    const base = `${gw.url}/api/v1`;
    const virtual = VIRTUAL_MODELS.includes(a.model) || String(a.model).startsWith("cb:");
    const llmConfig: Json = Object.fromEntries(Object.entries(GQL_PARAMS).map(([gql, rest]) => [gql, params[rest] ?? null]));
    llmConfig.temperature = params.temperature ?? 0.7;
    llmConfig.stopSequences = params.stop ? [params.stop].flat() : [];
    return {
      id: a.id, name: a.name, description: a.description ?? "", llmConfig,
      llmProvider: { providerType: a.provider_type ?? "openai", model: a.model ?? "", baseUrl: null },
      prompts: { system: a.system_prompt ?? "", userTemplate: a.user_template ?? "", contextInstructions: a.context_instructions ?? null },
      capabilities: a.capabilities ?? [], tools: a.tools ?? [], createdAt: a.created_at, updatedAt: a.updated_at, tenantId: a.tenant_id,
      tenantPermissions: [...SCOPES],
      executionEndpoints: {
        execute: `${base}/agents/${a.id}/execute`, stream: `${base}/agents/${a.id}/execute/stream`,
        history: `${base}/executions?agent_id=${a.id}`, resume: `${base}/executions/{execution_id}/stream`,
      },
      streamingConfig: {
        endpoint: `${base}/agents/${a.id}/execute/stream`, protocol: "text/event-stream", eventTypes: [...EVENT_TYPES], heartbeatSeconds: 15,
        minHeartbeatSeconds: 0.5, maxHeartbeatSeconds: 300, resumable: true, resumeHeader: "Last-Event-ID",
        onDisconnectOptions: ["cancel", "continue"], defaultOnDisconnect: "cancel", includeUsageDefault: true,
      },
      virtualModelMappings: [{
        name: a.model, kind: virtual ? "virtual" : "concrete", source: "platform", strategy: virtual ? "balanced" : null, task: null,
        candidates: [gw.modelResolved], resolvesTo: gw.modelResolved, provider: gw.provider, fallbacks: [], capabilities: ["streaming", "tools"],
        available: true, unavailableReason: null,
      }],
      toolConfigurations: (a.tools ?? []).map((name: string) => ({ name, description: "", source: "builtin", inputSchema: {}, health: { status: "ok", lastError: null } })),
      performanceMetrics: (args: { window: string }) => this.metrics(a.id, args.window),
      executionHistory: (args: { first: number; after?: string | null; status?: string | null }) => this.historyPage(a.id, args),
    };
  }

  private runsOf(agentId?: string): Run[] {
    return [...this.state.runs.values()].filter((r) => agentId === undefined || r.agentId === agentId);
  }

  private metrics(agentId: string, window: string): Json {
    const runs = this.runsOf(agentId).filter((r) => r.status !== "running");
    const ok = runs.filter((r) => r.status === "completed").length;
    const sum = (key: string) => runs.reduce((total, r) => total + Number(r.usage?.[key] ?? 0), 0);
    const blank = { p50: null, p95: null, p99: null, mean: null };
    const now = new Date().toISOString();
    return {
      window, since: now, until: now, executions: runs.length, succeeded: ok, failed: runs.filter((r) => r.status === "failed").length,
      cancelled: runs.filter((r) => r.status === "cancelled").length, successRate: runs.length ? ok / runs.length : null, latencyMs: blank,
      ttftMs: blank, promptTokens: sum("prompt_tokens"), completionTokens: sum("completion_tokens"), totalTokens: sum("total_tokens"), costUsd: sum("cost_usd"),
    };
  }

  private historyPage(agentId: string, args: { first: number; after?: string | null; status?: string | null }): Json {
    let runs = this.runsOf(agentId).sort((a, b) => b.startedAt - a.startedAt);
    if (args.status) runs = runs.filter((r) => r.status === args.status!.toLowerCase());
    const start = args.after ? runs.findIndex((r) => r.id === args.after) + 1 : 0;
    const page = runs.slice(start, start + args.first);
    return {
      edges: page.map((r) => ({ cursor: r.id, node: this.summary(r) })),
      pageInfo: { hasNextPage: start + args.first < runs.length, hasPreviousPage: start > 0, startCursor: page[0]?.id ?? null, endCursor: page.at(-1)?.id ?? null },
    };
  }

  private summary(r: Run): Json {
    const gw = this.gw;
    return {
      id: r.id, agentId: r.agentId, kind: r.kind, status: r.status.toUpperCase(), stream: r.stream, modelRequested: r.modelRequested,
      modelResolved: gw.modelResolved, provider: gw.provider, startedAt: iso(r.startedAt), completedAt: iso(r.completedAt),
      durationMs: r.completedAt === null ? null : r.completedAt - r.startedAt, promptTokens: r.usage?.prompt_tokens ?? 0,
      completionTokens: r.usage?.completion_tokens ?? 0, totalTokens: r.usage?.total_tokens ?? 0, costUsd: r.usage?.cost_usd ?? 0,
      errorType: r.error?.type ?? null, errorMessage: r.error?.message ?? null,
    };
  }

  private executionNode(r: Run): Json {
    return {
      id: r.id, agentId: r.agentId ?? "", resourceId: tag(r.requestMetadata.resource_id) ?? "unknown",
      stateId: tag(r.requestMetadata.state_id) ?? "unknown", status: r.status.toUpperCase(), inputData: { prompt: r.prompt },
      outputData: r.status === "completed" ? { content: r.text, finish_reason: "stop", tool_calls: [] } : null,
      errorMessage: r.error?.message ?? null, startedAt: iso(r.startedAt), completedAt: iso(r.completedAt),
      durationMs: r.completedAt === null ? null : r.completedAt - r.startedAt, retryCount: 0,
    };
  }

  private budgetStatusOf(): Json {
    const budget = this.state.getBudget() ?? { limit: 100, warningThreshold: 0.8 };
    const used = this.runsOf().reduce((total, r) => total + Number(r.usage?.cost_usd ?? 0), 0);
    const share = budget.limit ? used / budget.limit : 0;
    return {
      budgetId: "tenant", limit: budget.limit, used, percentageUsed: share * 100, isExhausted: used >= budget.limit,
      isWarning: share >= budget.warningThreshold, remaining: Math.max(0, budget.limit - used), message: `${used.toFixed(6)} of ${budget.limit} USD used`,
    };
  }

  // ---- Query

  health(): string {
    return "ok";
  }

  agents(): Json[] {
    return this.gw.agents.map((a) => this.agentNode(a));
  }

  agent(args: { id: string }): Json | null {
    const agent = this.state.agents.get(args.id);
    return agent ? this.agentNode({ ...agent }) : null;
  }

  agentList(args: { filter?: Json | null; first: number; after?: string | null }): Json {
    const f = args.filter ?? {};
    const agents = this.gw.agents.filter((a) =>
      (!f.name || a.name.toLowerCase().includes(String(f.name).toLowerCase())) && (!f.model || a.model === f.model) &&
      (!f.tag || a.tags.includes(f.tag)) && (!f.capability || a.capabilities.includes(f.capability)) && (!f.tool || a.tools.includes(f.tool)));
    const start = args.after ? agents.findIndex((a) => a.id === args.after) + 1 : 0;
    const page = agents.slice(start, start + args.first);
    return {
      totalCount: agents.length, edges: page.map((a) => ({ cursor: a.id, node: this.agentNode(a) })),
      pageInfo: { hasNextPage: start + args.first < agents.length, hasPreviousPage: start > 0, startCursor: page[0]?.id ?? null, endCursor: page.at(-1)?.id ?? null },
    };
  }

  agentExecution(args: { id: string }): Json | null {
    const run = this.state.runs.get(args.id);
    return run ? this.executionNode(run) : null;
  }

  resourceExecutions(args: { resourceId: string }): Json[] {
    return this.runsOf().filter((r) => tag(r.requestMetadata.resource_id) === args.resourceId)
      .sort((a, b) => b.startedAt - a.startedAt).map((r) => this.executionNode(r));
  }

  tools(): Json[] {
    return [];
  }

  mcpServers(): Json[] {
    return [];
  }

  deprecatedUsage(): Json[] {
    return [];
  }

  llmProviders(): Json[] {
    const gw = this.gw;
    const now = new Date().toISOString();
    return [{
      id: gw.provider, providerType: "openai", name: gw.provider, baseUrl: "http://fake.invalid", createdAt: now, updatedAt: now,
      models: [{
        id: gw.modelResolved, name: gw.modelResolved, maxTokens: 16384, contextWindow: 128000, costPerInputToken: 1e-6, costPerOutputToken: 2e-6,
        supportsStreaming: true, supportsFunctionCalling: true, capabilities: ["streaming", "tools"],
      }],
      healthStatus: { isHealthy: true, lastCheck: now, errorRate: 0, averageLatencyMs: 1, consecutiveFailures: 0, lastError: null },
    }];
  }

  budgetStatus(): Json {
    return this.budgetStatusOf();
  }

  costAnalytics(args: { input: Json }): Json {
    const runs = this.runsOf().filter((r) => r.usage);
    const cost = runs.reduce((total, r) => total + Number(r.usage!.cost_usd ?? 0), 0);
    const tokens = runs.reduce((total, r) => total + Number(r.usage!.total_tokens ?? 0), 0);
    return {
      totalCost: cost, totalTokens: tokens, averageCostPerToken: tokens ? cost / tokens : 0, providerBreakdown: { [this.gw.provider]: cost },
      modelBreakdown: { [this.gw.modelResolved]: cost }, dailyCosts: {}, periodStart: args.input.startDate, periodEnd: args.input.endDate,
    };
  }

  // ---- Mutation

  createAgent(args: { input: Json }): Json {
    const input = args.input;
    const config = input.llmConfig ?? {};
    const parameters: Json = {};
    for (const [gql, rest] of Object.entries(GQL_PARAMS)) if (config[gql] !== null && config[gql] !== undefined) parameters[rest] = config[gql];
    if (config.stopSequences?.length) parameters.stop = config.stopSequences;
    const prompts = input.prompts ?? {};
    return this.agentNode(this.state.newAgent({
      name: input.name, description: input.description, model: input.llmProvider?.model, system_prompt: prompts.system,
      user_template: prompts.userTemplate, context_instructions: prompts.contextInstructions, parameters,
      capabilities: input.capabilities, tools: input.tools,
    }));
  }

  updateAgent(args: { id: string; input: Json }): Json {
    const names: Record<string, string> = { systemPrompt: "system_prompt", userTemplate: "user_template", contextInstructions: "context_instructions" };
    const changes: Json = {};
    for (const [key, value] of Object.entries(args.input)) if (key !== "parameters") changes[names[key] ?? key] = value;
    if (args.input.parameters) {
      changes.parameters = Object.fromEntries(
        Object.entries(args.input.parameters as Json).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [GQL_PARAMS[k] ?? k, v]),
      );
    }
    return this.agentNode(this.state.updateAgent(args.id, changes));
  }

  deleteAgent(args: { id: string }): Json {
    this.state.deleteAgent(args.id);
    return { success: true, id: args.id };
  }

  async llmChatCompletion(args: { input: Json }): Promise<Json> {
    const gw = this.gw;
    const run = await this.state.chat(args.input.model, args.input.messages, args.input.user);
    const usage = run.usage!;
    return {
      id: run.id, model: gw.modelResolved, provider: gw.provider,
      choices: [{ index: 0, message: { role: "assistant", content: run.text, name: null }, finishReason: "stop" }],
      usage: { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, totalTokens: usage.total_tokens, estimatedCost: usage.cost_usd },
      routingInfo: { selectedProvider: gw.provider, routingStrategy: "balanced", latencyMs: 1, retryCount: 0, fallbackUsed: false },
    };
  }

  setBudget(args: { input: Json }): Json {
    this.state.setBudget({ limit: args.input.limit, warningThreshold: args.input.warningThreshold });
    return this.budgetStatusOf();
  }
}
