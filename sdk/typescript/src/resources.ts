/** The REST resources of a `Client`: agents, executions, models, tools, MCP servers,
 * analytics, budgets, audit, data subjects, retention. Operations both surfaces offer go through `Surfaces` (failover). */
import { APIConnectionError, NotFoundError, StreamError } from "./errors.js";
import type { DualCall } from "./client.js";
import { agentFromGraphQL, agentInput, executeInput, executionFromGraphQL, resultFromGraphQL, type GraphQLClient } from "./graphql.js";
import { type RequestOptions, retryWaitMs, sleep, type Transport } from "./http.js";
import { parseSSE } from "./sse.js";
import { ExecutionStream, type StreamControl } from "./stream.js";
import type {
  Agent, AgentCreate, AgentUpdate, AuditEntry, Budget, BudgetInput, ExecuteRequest, Execution, ExecutionPage,
  CollaborationDefinition, CollaborationRun, ExecutionResult, ExperimentInput, ExperimentReport, FeedbackGiven, FeedbackInput, JudgeSpec, JudgeVerdict, McpServer, McpServerCreate, ModelInfo, ModelPolicy, RetentionInput, RetentionSetting, StreamOptions,
  SubjectErasure, SubjectExecutions, SubjectExportLine, Tool, VirtualModelInput,
} from "./types.js";

/** Runs an operation over REST or GraphQL as the client's mode and health say. */
export interface Surfaces {
  run<T>(call: DualCall<T>): Promise<T>;
}

export interface CallOptions {
  signal?: AbortSignal;
}

const enc = encodeURIComponent;

abstract class Resource {
  constructor(protected readonly transport: Transport) {}

  protected async call<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.transport.request<T>(method, path, options)).data;
  }
}

abstract class DualResource extends Resource {
  constructor(transport: Transport, protected readonly gql: GraphQLClient, protected readonly surfaces: Surfaces) {
    super(transport);
  }
}

export type StreamRequest = ExecuteRequest & { stream_options?: StreamOptions };

export class Agents extends DualResource {
  /** Create an agent. Over GraphQL (failover) only when REST cannot have created it, and
   * not with `tags` (the legacy input has no place for them). */
  create(body: AgentCreate, options: CallOptions = {}): Promise<Agent> {
    return this.surfaces.run({
      rest: () => this.call("POST", "/api/v1/agents", { body, signal: options.signal }),
      graphql: body.tags?.length ? null : async () => agentFromGraphQL((await this.gql.createAgent(agentInput(body))) as never),
      mayHaveRun: true,
    });
  }

  get(id: string, options: CallOptions = {}): Promise<Agent> {
    return this.surfaces.run({
      rest: () => this.call("GET", `/api/v1/agents/${enc(id)}`, { signal: options.signal }),
      graphql: async () => {
        const node = await this.gql.agent(id, undefined);
        if (!node) throw notFound(`agent ${id} not found`);
        return agentFromGraphQL(node as never);
      },
    });
  }

  list(options: CallOptions = {}): Promise<Agent[]> {
    return this.surfaces.run({
      rest: async () => (await this.call<{ agents: Agent[] }>("GET", "/api/v1/agents", { signal: options.signal })).agents,
      graphql: async () => (await this.gql.allAgents()).map((node) => agentFromGraphQL(node as never)),
    });
  }

  /** Change some fields (each change is a new `version`). */
  update(id: string, patch: AgentUpdate, options: CallOptions = {}): Promise<Agent> {
    return this.surfaces.run({
      rest: () => this.call("PATCH", `/api/v1/agents/${enc(id)}`, { body: patch, idempotent: true, signal: options.signal }),
      graphql: async () => agentFromGraphQL((await this.gql.updateAgent(id, patch as Record<string, unknown>)) as never),
    });
  }

  delete(id: string, options: CallOptions = {}): Promise<{ id: string; deleted?: boolean; [key: string]: unknown }> {
    return this.surfaces.run({
      rest: () => this.call("DELETE", `/api/v1/agents/${enc(id)}`, { signal: options.signal }),
      graphql: async () => {
        const done = await this.gql.deleteAgent(id);
        return { id: done.id, deleted: done.success };
      },
    });
  }

  /** Run the agent and answer its whole result. Over GraphQL (failover, only when REST cannot
   * have run it) it is `llmChatCompletion(model: "agent:<id>")`, a `chat_completion`
   * execution, and the result says `surface: "graphql"`; requests with `tools`, a non-message
   * `context` or parameters GraphQL lacks stay on REST. */
  execute(id: string, body: ExecuteRequest, options: CallOptions = {}): Promise<ExecutionResult> {
    const input = executeInput(id, body);
    return this.surfaces.run({
      rest: () => this.call("POST", `/api/v1/agents/${enc(id)}/execute`, { body, signal: options.signal }),
      graphql: input ? async () => resultFromGraphQL(id, await this.gql.llmChatCompletion(input)) : null,
      mayHaveRun: true,
    });
  }

  /** Run the agent streamed: `for await (const ev of client.agents.stream(id, { prompt }))`, or
   * `await stream.finalResult()`. A dropped connection is resumed with `Last-Event-ID`; see
   * `StreamControl.resume` for what closing the stream then does upstream, and
   * `stream.cancel()` to cancel the execution upstream. */
  stream(id: string, body: StreamRequest, control: StreamControl = {}): ExecutionStream {
    const asked = body.stream_options?.on_disconnect;
    const resume = control.resume ?? asked !== "cancel";
    const sent: StreamRequest = resume && !asked ? { ...body, stream_options: { ...body.stream_options, on_disconnect: "continue" } } : body;
    return new ExecutionStream(
      this.transport,
      async (signal) =>
        (await this.transport.request("POST", `/api/v1/agents/${enc(id)}/execute/stream`, { body: sent, stream: true, signal })).response,
      { ...control, resume, heartbeatS: body.stream_options?.heartbeat_s ?? undefined, closeCancels: sent.stream_options?.on_disconnect !== "continue" },
    );
  }
}

export interface ExecutionListParams {
  agent_id?: string;
  status?: string;
  kind?: string;
  limit?: number;
  before?: string;
}

export class Executions extends DualResource {
  get(id: string, options: CallOptions = {}): Promise<Execution> {
    return this.surfaces.run({
      rest: () => this.call("GET", `/api/v1/executions/${enc(id)}`, { signal: options.signal }),
      graphql: async () => {
        const node = await this.gql.agentExecution(id);
        if (!node) throw notFound(`execution ${id} not found`);
        return executionFromGraphQL(node as never);
      },
    });
  }

  /** A page of history, newest first; pass `next_before` as `before` for the next. */
  list(params: ExecutionListParams = {}, options: CallOptions = {}): Promise<ExecutionPage> {
    return this.call("GET", "/api/v1/executions", { query: { ...params }, signal: options.signal });
  }

  /** Every execution matching `params`, page after page. */
  async *iterate(params: ExecutionListParams = {}): AsyncGenerator<Execution> {
    let before = params.before;
    for (;;) {
      const page = await this.list({ ...params, before });
      yield* page.executions;
      if (!page.next_before || page.executions.length === 0) return;
      before = page.next_before;
    }
  }

  /** Cancel a running streamed execution (REST only): every reader's stream ends with the
   * cancellation's `error` event and the upstream provider call is cut. Answers the execution
   * as recorded (`status: "cancelled"`), once the cancellation is durable; one already
   * cancelled answers so again. One that ended otherwise throws `ConflictError`; an unknown id
   * (or another tenant's) `NotFoundError`. A stream's own `cancel()` calls this. */
  cancel(id: string, options: CallOptions = {}): Promise<Execution> {
    return this.call("POST", `/api/v1/executions/${enc(id)}/cancel`, { idempotent: true, signal: options.signal });
  }

  /** Score an ended execution in [0, 1] (`true`/`false`: 1 and 0); scope `executions:write`, or
   * the key that started it. Not retried: each call records one more score. */
  feedback(id: string, body: FeedbackInput, options: CallOptions = {}): Promise<FeedbackGiven> {
    return this.call("POST", `/api/v1/executions/${enc(id)}/feedback`, { body, idempotent: false, signal: options.signal });
  }

  /** Judge a completed execution now: `{score, reason, judge}` or `{error, judge}`, recorded on it. */
  judge(id: string, spec: JudgeSpec, options: CallOptions = {}): Promise<JudgeVerdict> {
    return this.call("POST", `/api/v1/executions/${enc(id)}/judge`, { body: spec, signal: options.signal });
  }

  /** Rejoin a streamed execution after `lastEventId` (0: from its start). */
  resume(id: string, options: StreamControl & { lastEventId?: number; heartbeatS?: number } = {}): ExecutionStream {
    const lastEventId = options.lastEventId ?? 0;
    return new ExecutionStream(
      this.transport,
      async (signal) =>
        (
          await this.transport.request("GET", `/api/v1/executions/${enc(id)}/stream`, {
            headers: { "Last-Event-ID": String(lastEventId) },
            query: { heartbeat_s: options.heartbeatS },
            stream: true,
            signal,
          })
        ).response,
      { ...options, executionId: id, lastEventId },
    );
  }
}

export class Models extends Resource {
  private etag: string | null = null;
  private cached: ModelInfo[] | null = null;
  /** How the last `list()` was answered: `fetched` (200) or `not_modified` (304, from the cache). */
  lastStatus: "fetched" | "not_modified" | null = null;

  constructor(transport: Transport, private readonly tenantId: () => string) {
    super(transport);
  }

  /** The tenant's models, virtual names first; cached, revalidated with `If-None-Match`. */
  async list(options: CallOptions = {}): Promise<ModelInfo[]> {
    const headers: Record<string, string> = this.etag && this.cached ? { "If-None-Match": this.etag } : {};
    const reply = await this.transport.request<{ models: ModelInfo[] }>("GET", "/api/v1/models", { headers, accept: [304], signal: options.signal });
    if (reply.status === 304 && this.cached) {
      this.lastStatus = "not_modified";
      return this.cached;
    }
    this.lastStatus = "fetched";
    this.etag = reply.headers.get("etag");
    this.cached = reply.data.models;
    return this.cached;
  }

  /** One model (virtual or concrete) of the tenant's list, or undefined. */
  async get(id: string): Promise<ModelInfo | undefined> {
    return (await this.list()).find((m) => m.id === id);
  }

  /** Forget the cached list (the next `list()` fetches it whole). */
  invalidate(): void {
    this.etag = null;
    this.cached = null;
  }

  /** OpenAI's list shape (`GET /v1/models`). */
  openai(): Promise<{ object: "list"; data: Array<{ id: string; owned_by: string }> }> {
    return this.call("GET", "/v1/models");
  }

  private tenantPath(rest: string): string {
    return `/api/v1/tenants/${enc(this.tenantId())}/${rest}`;
  }

  async setMapping(name: string, body: VirtualModelInput): Promise<Record<string, unknown>> {
    const out = await this.call<Record<string, unknown>>("PUT", this.tenantPath(`model-mappings/${enc(name)}`), { body });
    return out;
  }

  async listMappings(): Promise<Array<Record<string, unknown>>> {
    return (await this.call<{ mappings: Array<Record<string, unknown>> }>("GET", this.tenantPath("model-mappings"))).mappings;
  }

  removeMapping(name: string): Promise<Record<string, unknown>> {
    return this.call("DELETE", this.tenantPath(`model-mappings/${enc(name)}`));
  }

  setPolicy(body: ModelPolicy): Promise<Record<string, unknown>> {
    return this.call("PUT", this.tenantPath("model-policy"), { body });
  }

  getPolicy(): Promise<Record<string, unknown>> {
    return this.call("GET", this.tenantPath("model-policy"));
  }

  /** The configured providers with their models and health (`GET /api/v1/providers`). */
  async providers(): Promise<Array<Record<string, any>>> {
    return (await this.call<{ providers: Array<Record<string, any>> }>("GET", "/api/v1/providers")).providers;
  }
}

export class Tools extends Resource {
  async list(): Promise<Tool[]> {
    return (await this.call<{ tools: Tool[] }>("GET", "/api/v1/tools")).tools;
  }
}

export class McpServers extends Resource {
  /** Register a server (it connects and lists its tools at once). */
  register(body: McpServerCreate): Promise<McpServer> {
    return this.call("POST", "/api/v1/mcp/servers", { body });
  }

  async list(): Promise<McpServer[]> {
    return (await this.call<{ servers: McpServer[] }>("GET", "/api/v1/mcp/servers")).servers;
  }

  refresh(id: string): Promise<McpServer> {
    return this.call("POST", `/api/v1/mcp/servers/${enc(id)}/refresh`, { idempotent: true });
  }

  remove(id: string): Promise<Record<string, unknown>> {
    return this.call("DELETE", `/api/v1/mcp/servers/${enc(id)}`);
  }
}

export interface AnalyticsParams {
  from?: string | number;
  to?: string | number;
  group_by?: string;
  agent_id?: string;
  model?: string;
  [key: string]: string | number | undefined;
}

export class Analytics extends Resource {
  usage(params: AnalyticsParams = {}): Promise<Record<string, any>> {
    return this.call("GET", "/api/v1/analytics/usage", { query: params });
  }

  models(params: AnalyticsParams = {}): Promise<Record<string, any>> {
    return this.call("GET", "/api/v1/analytics/models", { query: params });
  }

  errors(params: AnalyticsParams = {}): Promise<Record<string, any>> {
    return this.call("GET", "/api/v1/analytics/errors", { query: params });
  }

  /** One of the reports as CSV text. */
  async csv(report: "usage" | "models" | "errors", params: AnalyticsParams = {}): Promise<string> {
    return this.call("GET", `/api/v1/analytics/${report}`, { query: { ...params, format: "csv" } });
  }
}

export interface BudgetEvent {
  event_id: number;
  type: "budget_set" | "budget_removed" | "budget_threshold_crossed" | string;
  data: Record<string, any>;
}

export class Budgets extends Resource {
  /** Set the budget of `tenant` or `agent:<id>`. */
  set(scope: string, body: BudgetInput): Promise<Budget> {
    return this.call("PUT", `/api/v1/budgets/${enc(scope)}`, { body });
  }

  get(scope: string): Promise<Budget> {
    return this.call("GET", `/api/v1/budgets/${enc(scope)}`);
  }

  async list(): Promise<Budget[]> {
    return (await this.call<{ budgets: Budget[] }>("GET", "/api/v1/budgets")).budgets;
  }

  remove(scope: string): Promise<{ scope: string; removed: boolean }> {
    return this.call("DELETE", `/api/v1/budgets/${enc(scope)}`);
  }

  /** The live feed of budget events, from after `after` (0: the first); reconnects after a
   * drop with `Last-Event-ID`. Stop it with `signal` or by leaving the loop. */
  async *events(options: { after?: number; heartbeatS?: number; signal?: AbortSignal; maxResumes?: number } = {}): AsyncGenerator<BudgetEvent> {
    let last = options.after ?? 0;
    let failures = 0;
    const closer = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, closer.signal]) : closer.signal;
    try {
      while (!signal.aborted) {
        try {
          const reply = await this.transport.request("GET", "/api/v1/budgets/events", {
            headers: { "Last-Event-ID": String(last) },
            query: { heartbeat_s: options.heartbeatS },
            stream: true,
            signal,
          });
          for await (const message of parseSSE(reply.response.body!, () => {}, signal)) {
            failures = 0;
            const id = Number(message.id);
            if (!Number.isFinite(id) || id <= last) continue;
            last = id;
            yield { event_id: id, type: message.event, data: JSON.parse(message.data) };
          }
        } catch (error) {
          if (signal.aborted) return;
          if (++failures > (options.maxResumes ?? 5)) throw new StreamError(`the budget feed broke: ${(error as Error).message}`, { cause: error });
          await sleep(retryWaitMs(this.transport.config.retry, failures - 1, null), signal).catch(() => {});
        }
      }
    } finally {
      closer.abort();
    }
  }
}

export interface AuditParams {
  kind?: string | string[];
  since?: number;
  until?: number;
  limit?: number;
}

export class Audit extends Resource {
  async list(params: AuditParams = {}): Promise<AuditEntry[]> {
    return (await this.call<{ entries: AuditEntry[] }>("GET", "/api/v1/audit", { query: { ...params } as RequestOptions["query"] })).entries;
  }
}

/** `client.subjects`: one data subject's executions, listed, exported or erased (`tenant:admin`).
 * The subject is the id sent as `subject` (or OpenAI's `user`); it goes escaped in the path. */
export class Subjects extends Resource {
  /** Its executions as history shows them, with their `input`, newest first
   * (`payload: "erased"` once erased). */
  list(subject: string, options: CallOptions = {}): Promise<SubjectExecutions> {
    return this.call("GET", `/api/v1/subjects/${enc(subject)}`, { signal: options.signal });
  }

  /** Everything held about the subject, the export's JSON lines parsed: each execution
   * (`{ kind: "execution", data }`), then every event of them (`{ kind: "event", … }`). */
  async export(subject: string, options: CallOptions = {}): Promise<SubjectExportLine[]> {
    const path = `/api/v1/subjects/${enc(subject)}/export`;
    const reply = await this.transport.request("GET", path, { headers: { Accept: "application/x-ndjson" }, stream: true, signal: options.signal });
    let text: string;
    try {
      text = await reply.response.text();
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      throw new APIConnectionError(`GET ${path}: the answer broke off`, { cause: error });
    }
    return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line) as SubjectExportLine);
  }

  /** Destroy the subject's payload keys: its prompts and answers are unreadable everywhere
   * from then on (counts, tokens and cost stay). */
  erase(subject: string, options: CallOptions = {}): Promise<SubjectErasure> {
    return this.call("DELETE", `/api/v1/subjects/${enc(subject)}`, { signal: options.signal });
  }
}

/** `client.retention`: how long the tenant's payloads and metrics are kept (`tenant:admin`). */
export class RetentionResource extends Resource {
  get(options: CallOptions = {}): Promise<RetentionSetting> {
    return this.call("GET", "/api/v1/retention", { signal: options.signal });
  }

  /** Keep payloads `payload_days` days and executions `metrics_days` (absent or null: forever),
   * for executions started from now on. */
  set(body: RetentionInput, options: CallOptions = {}): Promise<RetentionSetting> {
    const sent = { payload_days: body.payload_days, metrics_days: body.metrics_days ?? null };
    return this.call("PUT", "/api/v1/retention", { body: sent, signal: options.signal });
  }

  /** Keep everything again (what was already swept stays gone). */
  clear(options: CallOptions = {}): Promise<RetentionSetting> {
    return this.call("DELETE", "/api/v1/retention", { signal: options.signal });
  }
}

/** `client.judge`: the tenant's default judge (`agents:write` to change it). */
export class JudgeResource extends Resource {
  get(options: CallOptions = {}): Promise<{ judge: JudgeSpec | null }> {
    return this.call("GET", "/api/v1/judge", { signal: options.signal });
  }

  /** Judge a `sample_rate` share of the executions whose agent names no judge. */
  set(spec: JudgeSpec, options: CallOptions = {}): Promise<{ judge: JudgeSpec | null }> {
    return this.call("PUT", "/api/v1/judge", { body: spec, signal: options.signal });
  }

  clear(options: CallOptions = {}): Promise<{ judge: JudgeSpec | null }> {
    return this.call("DELETE", "/api/v1/judge", { signal: options.signal });
  }
}

/** `client.experiments`: replay recorded executions on other models or agents. */
export class Experiments extends Resource {
  /** Start one; it runs in the background (`get` or `wait` for its report). */
  create(body: ExperimentInput, options: CallOptions = {}): Promise<ExperimentReport> {
    return this.call("POST", "/api/v1/experiments", { body, signal: options.signal });
  }

  get(id: string, options: CallOptions = {}): Promise<ExperimentReport> {
    return this.call("GET", `/api/v1/experiments/${enc(id)}`, { signal: options.signal });
  }

  async list(options: CallOptions = {}): Promise<Array<Record<string, any>>> {
    const page = await this.call<{ experiments: Array<Record<string, any>> }>("GET", "/api/v1/experiments", { signal: options.signal });
    return page.experiments;
  }

  /** Stop it; a repeat once it has ended throws `ConflictError`. */
  cancel(id: string, options: CallOptions = {}): Promise<ExperimentReport> {
    return this.call("POST", `/api/v1/experiments/${enc(id)}/cancel`, { signal: options.signal });
  }

  /** Its report once it has ended (rejects after `timeoutMs`). */
  async wait(id: string, options: CallOptions & { timeoutMs?: number; pollMs?: number } = {}): Promise<ExperimentReport> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    for (;;) {
      const found = await this.get(id, options);
      if (found.status !== "running") return found;
      if (Date.now() > deadline) throw new Error(`experiment ${id} still running`);
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
    }
  }
}

/** `client.collaborations`: saved DAGs of agent steps, and their runs. */
export class Collaborations extends Resource {
  /** Save a definition; a cycle, an unknown agent, step or input throws `InvalidRequestError`. */
  create(body: CollaborationDefinition, options: CallOptions = {}): Promise<CollaborationDefinition & { id: string; version: number }> {
    return this.call("POST", "/api/v1/collaborations", { body, signal: options.signal });
  }

  get(id: string, options: CallOptions = {}): Promise<CollaborationDefinition & { id: string; version: number }> {
    return this.call("GET", `/api/v1/collaborations/${enc(id)}`, { signal: options.signal });
  }

  async list(options: CallOptions = {}): Promise<Array<CollaborationDefinition & { id: string; version: number }>> {
    const page = await this.call<{ collaborations: Array<CollaborationDefinition & { id: string; version: number }> }>(
      "GET", "/api/v1/collaborations", { signal: options.signal });
    return page.collaborations;
  }

  /** A new version with these fields changed. */
  update(id: string, changes: Partial<CollaborationDefinition>, options: CallOptions = {}): Promise<CollaborationDefinition & { id: string; version: number }> {
    return this.call("PATCH", `/api/v1/collaborations/${enc(id)}`, { body: changes, signal: options.signal });
  }

  delete(id: string, options: CallOptions = {}): Promise<{ id: string; deleted: boolean }> {
    return this.call("DELETE", `/api/v1/collaborations/${enc(id)}`, { signal: options.signal });
  }

  /** Run a saved collaboration (`id`) or an inline `definition`, and wait for its end. */
  run(target: { id?: string; definition?: CollaborationDefinition; inputs?: Record<string, any> }, options: CallOptions = {}): Promise<CollaborationRun> {
    if ((target.id === undefined) === (target.definition === undefined)) {
      throw new Error("give a saved collaboration's id or an inline definition");
    }
    const path = target.id === undefined ? "/api/v1/collaborations/run" : `/api/v1/collaborations/${enc(target.id)}/run`;
    const body = { inputs: target.inputs ?? {}, ...(target.definition ? { definition: target.definition } : {}) };
    return this.call("POST", path, { body, signal: options.signal });
  }

  getRun(runId: string, options: CallOptions = {}): Promise<CollaborationRun> {
    return this.call("GET", `/api/v1/collaboration-runs/${enc(runId)}`, { signal: options.signal });
  }

  async listRuns(params: { status?: string; collaboration_id?: string; limit?: number } = {}, options: CallOptions = {}): Promise<Array<Record<string, any>>> {
    const page = await this.call<{ runs: Array<Record<string, any>> }>("GET", "/api/v1/collaboration-runs", { query: { ...params }, signal: options.signal });
    return page.runs;
  }

  /** Cancel its running steps; a repeat once it has ended throws `ConflictError`. */
  cancelRun(runId: string, options: CallOptions = {}): Promise<CollaborationRun> {
    return this.call("POST", `/api/v1/collaboration-runs/${enc(runId)}/cancel`, { signal: options.signal });
  }
}

export class Deprecations extends Resource {
  usage(): Promise<{ deprecations: Array<Record<string, any>>; usage: Array<Record<string, any>> }> {
    return this.call("GET", "/api/v1/deprecations/usage");
  }
}

function notFound(message: string): Error {
  return new NotFoundError(message, { status: 404 });
}
