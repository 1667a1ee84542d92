/** The GraphQL client: raw `query()`, the extended agent fields, the legacy operations, and
 * subscriptions over WebSocket (`graphql-transport-ws`). */
import { APIConnectionError, ERROR_CLASSES, GraphQLError, type GraphQLErrorEntry, errorFromObject } from "./errors.js";
import { type StreamEvent, toEvent } from "./events.js";
import type { Transport } from "./http.js";
import type * as G from "./generated/graphql.js";
import type { Agent, AgentCreate, ExecuteRequest, Execution, ExecutionResult } from "./types.js";

/** A WebSocket constructor as browsers and Node ≥ 22 have it (or the `ws` package's). */
export type WebSocketLike = new (url: string, protocols?: string | string[]) => WebSocketInstance;
export interface WebSocketInstance {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface QueryOptions {
  operationName?: string;
  signal?: AbortSignal;
}

/** The fields of an agent the SDK reads over GraphQL (mapped onto the REST shape). */
export const AGENT_FIELDS = `id name description capabilities tools createdAt updatedAt tenantId
  prompts { system userTemplate contextInstructions }
  llmConfig { temperature maxTokens topP frequencyPenalty presencePenalty stopSequences }
  virtualModelMappings { name }`;

/** Every field of §12.1 an agent offers beyond the legacy ones. */
export const EXTENDED_AGENT_FIELDS = `${AGENT_FIELDS}
  tenantPermissions
  executionEndpoints { execute stream history resume }
  streamingConfig { endpoint protocol eventTypes heartbeatSeconds minHeartbeatSeconds maxHeartbeatSeconds resumable resumeHeader onDisconnectOptions defaultOnDisconnect includeUsageDefault }
  virtualModelMappings { name kind source strategy task candidates resolvesTo provider fallbacks capabilities available unavailableReason }
  toolConfigurations { name description source inputSchema health { status lastError } }`;

const BUDGET_FIELDS = "budgetId limit used percentageUsed isExhausted isWarning remaining message";
const EXECUTION_FIELDS = "id agentId resourceId stateId status inputData outputData errorMessage startedAt completedAt durationMs retryCount";

/** A GraphQL agent in the REST API's snake_case shape (the fields both surfaces have). */
export function agentFromGraphQL(node: Record<string, any>): Agent {
  const config = node.llmConfig ?? {};
  const parameters: Record<string, unknown> = {};
  const put = (key: string, value: unknown) => {
    if (value !== null && value !== undefined) parameters[key] = value;
  };
  put("temperature", config.temperature);
  put("max_tokens", config.maxTokens);
  put("top_p", config.topP);
  put("frequency_penalty", config.frequencyPenalty);
  put("presence_penalty", config.presencePenalty);
  if (config.stopSequences?.length) parameters.stop = config.stopSequences;
  return {
    id: node.id,
    tenant_id: node.tenantId,
    name: node.name,
    description: node.description,
    model: node.virtualModelMappings?.[0]?.name ?? null,
    system_prompt: node.prompts?.system,
    user_template: node.prompts?.userTemplate,
    context_instructions: node.prompts?.contextInstructions ?? null,
    parameters,
    tools: node.tools,
    capabilities: node.capabilities,
    created_at: node.createdAt,
    updated_at: node.updatedAt,
  };
}

const STATUS: Record<string, string> = { RUNNING: "running", COMPLETED: "completed", FAILED: "failed", CANCELLED: "cancelled", TIMEOUT: "failed", PENDING: "running" };

/** A GraphQL execution in the REST history's shape (the fields both surfaces have). */
export function executionFromGraphQL(node: Record<string, any>): Execution {
  const output = node.outputData ?? null;
  return {
    execution_id: node.id,
    agent_id: node.agentId || null,
    status: STATUS[node.status] ?? String(node.status).toLowerCase(),
    resource_id: node.resourceId === "unknown" ? null : node.resourceId,
    state_id: node.stateId === "unknown" ? null : node.stateId,
    retry_count: node.retryCount,
    duration_ms: node.durationMs,
    response: output ? { content: output.content, finish_reason: output.finish_reason, tool_calls: output.tool_calls ?? [] } : null,
    error: node.errorMessage ? { type: node.status === "TIMEOUT" ? "provider_timeout" : "internal_error", message: node.errorMessage } : null,
  };
}

/** The legacy `AgentDefinitionInput` of a REST create body. */
export function agentInput(body: AgentCreate): G.AgentDefinitionInput {
  const params = (body.parameters ?? {}) as Record<string, any>;
  const drop = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as T;
  return {
    name: body.name,
    description: body.description ?? "",
    llmProvider: { providerType: body.provider_type ?? "openai", model: body.model, apiKey: "" },
    llmConfig: drop({
      temperature: params.temperature ?? 0.7,
      maxTokens: params.max_tokens,
      topP: params.top_p,
      frequencyPenalty: params.frequency_penalty,
      presencePenalty: params.presence_penalty,
      stopSequences: params.stop ? [params.stop].flat() : [],
    }),
    prompts: drop({ system: body.system_prompt ?? "", userTemplate: body.user_template ?? "", contextInstructions: body.context_instructions }),
    capabilities: body.capabilities ?? [],
    tools: body.tools ?? [],
  };
}

const GQL_PARAMS: Record<string, string> = {
  temperature: "temperature", max_tokens: "maxTokens", top_p: "topP",
  frequency_penalty: "frequencyPenalty", presence_penalty: "presencePenalty", stop: "stop",
};

/** The `llmChatCompletion` input that runs an execute request over GraphQL, or null when the
 * request has no such form (tools, a non-message context, parameters GraphQL lacks). */
export function executeInput(agentId: string, body: ExecuteRequest): G.LlmChatCompletionInput | null {
  if (body.tools?.length) return null;
  const messages: G.ChatMessageInput[] = [];
  if (Array.isArray(body.context)) {
    for (const m of body.context as Array<Record<string, unknown>>) {
      if (typeof m?.content !== "string") return null;
      messages.push({ role: String(m.role ?? "user"), content: m.content });
    }
  } else if (body.context !== undefined && body.context !== null) return null;
  messages.push({ role: "user", content: body.prompt });
  const input: Record<string, unknown> = { model: `agent:${agentId}`, messages };
  for (const [key, value] of Object.entries(body.parameters ?? {})) {
    if (value === undefined || value === null) continue;
    if (!(key in GQL_PARAMS)) return null;
    input[GQL_PARAMS[key]] = key === "stop" ? [value].flat() : value;
  }
  if (body.subject) input.user = body.subject; // the data subject travels as the legacy `user`
  return input as unknown as G.LlmChatCompletionInput;
}

/** An `llmChatCompletion` answer in the shape `agents.execute` answers over REST. */
export function resultFromGraphQL(agentId: string, answer: G.LlmResponseGQL): ExecutionResult {
  const choice = answer.choices?.[0];
  return {
    execution_id: answer.id,
    agent_id: agentId,
    status: "completed",
    response: { content: choice?.message?.content ?? "", finish_reason: choice?.finishReason ?? null, tool_calls: [] },
    usage: {
      prompt_tokens: answer.usage.promptTokens,
      completion_tokens: answer.usage.completionTokens,
      total_tokens: answer.usage.totalTokens,
      cost_usd: answer.usage.estimatedCost,
    },
    metadata: {
      model_resolved: answer.model,
      provider: answer.provider,
      fallback_used: answer.routingInfo?.fallbackUsed,
      duration_ms: answer.routingInfo?.latencyMs,
    },
    error: null,
    surface: "graphql",
  };
}

/** Turn GraphQL `camelCase` keys of an AgentUpdate into the REST snake_case (and back). */
function updateInput(patch: Record<string, any>): Record<string, unknown> {
  const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (key === "parameters" && value) {
      out.parameters = Object.fromEntries(Object.entries(value).map(([k, v]) => [camel(k), v]));
    } else out[camel(key)] = value;
  }
  return out;
}

/** The typed error of a GraphQL error list: the API's type when `extensions` name one. */
export function graphQLFailure(errors: GraphQLErrorEntry[]): Error {
  for (const entry of errors) {
    const ext = entry.extensions ?? {};
    let type = typeof ext.type === "string" ? ext.type : undefined;
    const code = typeof ext.code === "string" ? ext.code : "";
    if (!type) {
      if (code === "UNAUTHENTICATED") type = "authentication_failed";
      else if (code === "FORBIDDEN") type = "permission_denied";
      else if (code === "BAD_USER_INPUT") type = "invalid_request";
      else if (code.toLowerCase() in ERROR_CLASSES) type = code.toLowerCase();
      else if (/not found/i.test(entry.message)) type = "not_found";
      else if (/scope|permission/i.test(entry.message)) type = "permission_denied";
    }
    if (type) {
      return errorFromObject(
        { type, message: entry.message, execution_id: ext.executionId, details: ext.details },
        { retryAfter: typeof ext.retryAfter === "number" ? ext.retryAfter : null, body: errors },
      );
    }
  }
  return new GraphQLError(errors.map((e) => e.message).join("; ") || "GraphQL error", errors);
}

export interface Subscription<T> extends AsyncIterable<T> {
  /** Stop the subscription (and close its socket). */
  close(): void;
}

export class GraphQLClient {
  private readonly transport: Transport;
  private readonly webSocket?: WebSocketLike;
  /** The agent fields `agent()`/`agents()` select; the §12.1 extensions by default. */
  agentFields = EXTENDED_AGENT_FIELDS;

  constructor(transport: Transport, webSocket?: WebSocketLike) {
    this.transport = transport;
    this.webSocket = webSocket ?? (globalThis as { WebSocket?: WebSocketLike }).WebSocket;
  }

  /** Run a query or mutation; answer its `data` or throw the typed error of its `errors`. */
  async query<T = Record<string, any>>(query: string, variables: Record<string, unknown> = {}, options: QueryOptions = {}): Promise<T> {
    const mutation = /^\s*mutation\b/.test(query);
    const reply = await this.transport.request<{ data?: T; errors?: GraphQLErrorEntry[] }>("POST", "/graphql", {
      body: { query, variables, ...(options.operationName ? { operationName: options.operationName } : {}) },
      idempotent: !mutation,
      signal: options.signal,
    });
    const body = reply.data ?? {};
    if (body.errors?.length) throw graphQLFailure(body.errors);
    return body.data as T;
  }

  // ---- agents (extended schema) ------------------------------------------------------

  /** One agent with the §12.1 fields (endpoints, mappings, tool configurations…), or null. */
  async agent(id: string, fields = this.agentFields): Promise<G.AgentDefinitionGQL | null> {
    return (await this.query<{ agent: G.AgentDefinitionGQL | null }>(`query Agent($id: String!) { agent(id: $id) { ${fields} } }`, { id })).agent;
  }

  /** A page of the tenant's agents (`agentList`), oldest first. */
  async agentList(args: { filter?: G.AgentFilterInput; first?: number; after?: string } = {}, fields = this.agentFields): Promise<G.AgentConnectionGQL> {
    const data = await this.query<{ agentList: G.AgentConnectionGQL }>(
      `query AgentList($filter: AgentFilterInput, $first: Int!, $after: String) {
        agentList(filter: $filter, first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${fields} } } } }`,
      { filter: args.filter ?? null, first: args.first ?? 50, after: args.after ?? null },
    );
    return data.agentList;
  }

  /** Every agent of the tenant, all pages of `agentList`. */
  async allAgents(fields = AGENT_FIELDS): Promise<G.AgentDefinitionGQL[]> {
    const out: G.AgentDefinitionGQL[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.agentList({ first: 100, after }, fields);
      out.push(...page.edges.map((e) => e.node));
      if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return out;
      after = page.pageInfo.endCursor;
    }
  }

  /** An agent's performance metrics over a window (scope `analytics:read`). */
  async performanceMetrics(id: string, window: G.MetricsWindow = "LAST_24_HOURS"): Promise<G.PerformanceMetricsGQL | null> {
    const data = await this.query<{ agent: { performanceMetrics: G.PerformanceMetricsGQL | null } | null }>(
      `query Metrics($id: String!, $window: MetricsWindow!) { agent(id: $id) { performanceMetrics(window: $window) {
        window since until executions succeeded failed cancelled successRate latencyMs { p50 p95 p99 mean } ttftMs { p50 p95 p99 mean }
        promptTokens completionTokens totalTokens costUsd } } }`,
      { id, window },
    );
    return data.agent?.performanceMetrics ?? null;
  }

  /** A page of an agent's execution history, newest first (scope `executions:read`). */
  async executionHistory(id: string, args: { first?: number; after?: string; status?: G.ExecutionStatus } = {}): Promise<G.ExecutionConnectionGQL | null> {
    const data = await this.query<{ agent: { executionHistory: G.ExecutionConnectionGQL | null } | null }>(
      `query History($id: String!, $first: Int!, $after: String, $status: ExecutionStatus) { agent(id: $id) {
        executionHistory(first: $first, after: $after, status: $status) { pageInfo { hasNextPage endCursor } edges { cursor node {
          id agentId kind status stream modelRequested modelResolved provider startedAt completedAt durationMs
          promptTokens completionTokens totalTokens costUsd errorType errorMessage } } } } }`,
      { id, first: args.first ?? 20, after: args.after ?? null, status: args.status ?? null },
    );
    return data.agent?.executionHistory ?? null;
  }

  /** `updateAgent`; `patch` in the REST body's snake_case names. */
  async updateAgent(id: string, patch: Record<string, unknown>, fields = AGENT_FIELDS): Promise<G.AgentDefinitionGQL> {
    const data = await this.query<{ updateAgent: G.AgentDefinitionGQL }>(
      `mutation UpdateAgent($id: ID!, $input: AgentUpdateInput!) { updateAgent(id: $id, input: $input) { ${fields} } }`,
      { id, input: updateInput(patch) },
    );
    return data.updateAgent;
  }

  async deleteAgent(id: string): Promise<G.DeleteAgentResultGQL> {
    return (await this.query<{ deleteAgent: G.DeleteAgentResultGQL }>(`mutation DeleteAgent($id: ID!) { deleteAgent(id: $id) { success id } }`, { id })).deleteAgent;
  }

  async agentExecution(id: string): Promise<G.AgentExecutionGQL | null> {
    return (await this.query<{ agentExecution: G.AgentExecutionGQL | null }>(`query Execution($id: String!) { agentExecution(id: $id) { ${EXECUTION_FIELDS} } }`, { id })).agentExecution;
  }

  async resourceExecutions(resourceId: string): Promise<G.AgentExecutionGQL[]> {
    return (await this.query<{ resourceExecutions: G.AgentExecutionGQL[] }>(`query ResourceExecutions($r: String!) { resourceExecutions(resourceId: $r) { ${EXECUTION_FIELDS} } }`, { r: resourceId })).resourceExecutions;
  }

  async tools(): Promise<G.ToolGQL[]> {
    return (await this.query<{ tools: G.ToolGQL[] }>("query Tools { tools { name description inputSchema source } }")).tools;
  }

  async mcpServers(): Promise<G.McpServerGQL[]> {
    return (await this.query<{ mcpServers: G.McpServerGQL[] }>("query McpServers { mcpServers { id name transport command args url envKeys headerNames toolCount health { status lastError checkedAt } } }")).mcpServers;
  }

  async deprecatedUsage(): Promise<G.DeprecatedFieldUsageGQL[]> {
    return (await this.query<{ deprecatedUsage: G.DeprecatedFieldUsageGQL[] }>("query Deprecated { deprecatedUsage { tenantId field count firstUsedAt lastUsedAt replacement deprecatedOn sunsetOn } }")).deprecatedUsage;
  }

  // ---- legacy operations -------------------------------------------------------------

  /** The legacy `createAgent(input: AgentDefinitionInput!)`. */
  async createAgent(input: G.AgentDefinitionInput, fields = AGENT_FIELDS): Promise<G.AgentDefinitionGQL> {
    return (await this.query<{ createAgent: G.AgentDefinitionGQL }>(`mutation CreateAgent($input: AgentDefinitionInput!) { createAgent(input: $input) { ${fields} } }`, { input })).createAgent;
  }

  /** The legacy `agents` list (deprecated by the server: use `agentList`). */
  async agents(fields = AGENT_FIELDS): Promise<G.AgentDefinitionGQL[]> {
    return (await this.query<{ agents: G.AgentDefinitionGQL[] }>(`query ListAgents { agents { ${fields} } }`)).agents;
  }

  /** @deprecated The server deprecates `llmChatCompletion`: use `POST /v1/chat/completions`. */
  async llmChatCompletion(input: G.LlmChatCompletionInput): Promise<G.LlmResponseGQL> {
    return (
      await this.query<{ llmChatCompletion: G.LlmResponseGQL }>(
        `mutation LlmChat($input: LlmChatCompletionInput!) { llmChatCompletion(input: $input) {
          id model provider choices { index message { role content name } finishReason }
          usage { promptTokens completionTokens totalTokens estimatedCost }
          routingInfo { selectedProvider routingStrategy latencyMs retryCount fallbackUsed } } }`,
        { input },
      )
    ).llmChatCompletion;
  }

  async llmProviders(): Promise<G.LlmProviderGQL[]> {
    return (
      await this.query<{ llmProviders: G.LlmProviderGQL[] }>(
        "query Providers { llmProviders { id providerType name baseUrl createdAt updatedAt models { id name maxTokens contextWindow costPerInputToken costPerOutputToken supportsStreaming supportsFunctionCalling capabilities } healthStatus { isHealthy errorRate averageLatencyMs consecutiveFailures lastError } } }",
      )
    ).llmProviders;
  }

  async budgetStatus(args: { userId?: string; projectId?: string } = {}): Promise<G.BudgetStatusGQL> {
    return (await this.query<{ budgetStatus: G.BudgetStatusGQL }>(`query BudgetStatus($u: String, $p: String) { budgetStatus(userId: $u, projectId: $p) { ${BUDGET_FIELDS} } }`, { u: args.userId ?? null, p: args.projectId ?? null })).budgetStatus;
  }

  async setBudget(input: G.BudgetInput): Promise<G.BudgetStatusGQL> {
    return (await this.query<{ setBudget: G.BudgetStatusGQL }>(`mutation SetBudget($input: BudgetInput!) { setBudget(input: $input) { ${BUDGET_FIELDS} } }`, { input })).setBudget;
  }

  async costAnalytics(input: G.CostAnalyticsInput): Promise<G.CostAnalyticsGQL> {
    return (
      await this.query<{ costAnalytics: G.CostAnalyticsGQL }>(
        "query CostAnalytics($input: CostAnalyticsInput!) { costAnalytics(input: $input) { totalCost totalTokens averageCostPerToken providerBreakdown modelBreakdown dailyCosts periodStart periodEnd } }",
        { input },
      )
    ).costAnalytics;
  }

  // ---- subscriptions (graphql-transport-ws) -------------------------------------------

  /** Subscribe over WebSocket; each `next` payload's `data` is yielded until `complete`. */
  subscribe<T = Record<string, any>>(query: string, variables: Record<string, unknown> = {}): Subscription<T> {
    const Socket = this.webSocket;
    if (!Socket) throw new APIConnectionError("no WebSocket: pass `webSocket` to the Client (e.g. the `ws` package on Node < 22)");
    const url = this.transport.config.baseUrl.replace(/^http/, "ws") + "/graphql";
    const queue: Array<{ value?: T; error?: Error; done?: boolean }> = [];
    let wake: (() => void) | null = null;
    const push = (item: { value?: T; error?: Error; done?: boolean }) => {
      queue.push(item);
      wake?.();
    };
    let socket: WebSocketInstance | null = null;
    let finished = false;
    const close = () => {
      if (finished) return;
      finished = true;
      if (socket && socket.readyState === 1) socket.send(JSON.stringify({ id: "1", type: "complete" }));
      socket?.close(1000, "done");
      push({ done: true });
    };
    const start = async () => {
      const payload = await this.transport.authHeaders();
      socket = new Socket(url, "graphql-transport-ws");
      socket.onopen = () => socket!.send(JSON.stringify({ type: "connection_init", payload }));
      socket.onmessage = (ev) => {
        const message = JSON.parse(String(ev.data));
        if (message.type === "connection_ack") socket!.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
        else if (message.type === "ping") socket!.send(JSON.stringify({ type: "pong" }));
        else if (message.type === "next") {
          if (message.payload?.errors?.length) push({ error: graphQLFailure(message.payload.errors) });
          else push({ value: message.payload.data as T });
        } else if (message.type === "error") push({ error: graphQLFailure(message.payload ?? []) });
        else if (message.type === "complete") close();
      };
      socket.onclose = (ev) => {
        if (!finished) {
          finished = true;
          push(ev.code === 1000 ? { done: true } : { error: closeError(ev.code, ev.reason) });
        }
      };
      socket.onerror = () => {};
    };
    const started = start().catch((error) => push({ error }));
    return {
      close,
      async *[Symbol.asyncIterator]() {
        await started;
        try {
          for (;;) {
            while (queue.length) {
              const item = queue.shift()!;
              if (item.error) throw item.error;
              if (item.done) return;
              yield item.value as T;
            }
            await new Promise<void>((resolve) => (wake = resolve));
            wake = null;
          }
        } finally {
          close();
        }
      },
    };
  }

  /** An execution's events as typed stream events (live, or replayed once it has ended). */
  executionEvents(executionId: string): Subscription<StreamEvent> {
    const inner = this.subscribe<{ agentExecutionStream: string }>(
      "subscription Stream($id: String!) { agentExecutionStream(executionId: $id) }",
      { id: executionId },
    );
    return {
      close: inner.close,
      async *[Symbol.asyncIterator]() {
        for await (const data of inner) {
          const raw = JSON.parse(data.agentExecutionStream);
          const event = toEvent(raw.event, raw.id ?? null, raw.data ?? {});
          if (event) yield event;
        }
      },
    };
  }

  /** The cost of each execution of the tenant as it ends, from now on. */
  costUpdates(userId?: string): Subscription<Record<string, any>> {
    const inner = this.subscribe<{ costUpdates: string }>("subscription Costs($u: String) { costUpdates(userId: $u) }", { u: userId ?? null });
    return {
      close: inner.close,
      async *[Symbol.asyncIterator]() {
        for await (const data of inner) yield JSON.parse(data.costUpdates);
      },
    };
  }
}

function closeError(code: number, reason: string): Error {
  if (code === 4401) return errorFromObject({ type: "authentication_failed", message: reason || "Unauthorized" });
  if (code === 4403) return errorFromObject({ type: "permission_denied", message: reason || "Forbidden" });
  return new APIConnectionError(`the subscription's socket closed (${code}${reason ? `: ${reason}` : ""})`);
}
