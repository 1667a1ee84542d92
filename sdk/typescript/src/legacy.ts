/** Names of the legacy `circuit-breaker-sdk` mapped onto this client, so its code runs with an
 * import change (see docs/sdk.md, "Migrating from the legacy SDK"). Everything here is
 * deprecated: use `Client` and its resources. */
import { errorFromObject } from "./errors.js";
import type { GraphQLClient } from "./graphql.js";
import type * as G from "./generated/graphql.js";
import type { Transport } from "./http.js";
import { parseSSE } from "./sse.js";
import type { AgentCreate } from "./types.js";

/** @deprecated Model names of the legacy SDK; pass the strings (or virtual names) directly. */
export const COMMON_MODELS = {
  SMART_FAST: "cb:fastest",
  SMART_CHEAP: "cb:cost-optimal",
  SMART_BALANCED: "cb:smart-chat",
  SMART_CREATIVE: "cb:creative",
  SMART_CODING: "cb:coding",
  SMART_ANALYSIS: "cb:analysis",
  GPT_O4_MINI: "o4-mini-2025-04-16",
  CLAUDE_4_SONNET: "claude-sonnet-4-20250514",
  GEMINI_PRO: "gemini-2.5-pro",
  QWEN_CODER_3B: "qwen2.5-coder:3b",
  NOMIC_EMBED: "nomic-embed-text:latest",
  ALL_MINILM: "all-minilm:l6-v2",
} as const;

export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string;
  [key: string]: unknown;
}

export interface ChatCompletionRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  max_tokens?: number;
  top_p?: number;
  stream?: boolean;
  stop?: string | string[];
  [key: string]: unknown;
}

/** The legacy request's `circuit_breaker` options and `functions`, which this API does not take. */
const LEGACY_ONLY = ["circuit_breaker", "functions"];

function cleaned(request: ChatCompletionRequest): ChatCompletionRequest {
  const out = { ...request };
  for (const key of LEGACY_ONLY) delete out[key];
  return out;
}

/** @deprecated The legacy `client.llm()`: OpenAI-compatible chat completions (`/v1/chat/completions`). */
export class LegacyLLM {
  constructor(private readonly transport: Transport) {}

  /** @deprecated Use the `openai` SDK against `<baseUrl>/v1`, or `client.agents.execute`. */
  async chatCompletion(request: ChatCompletionRequest): Promise<Record<string, any>> {
    return (await this.transport.request<Record<string, any>>("POST", "/v1/chat/completions", { body: { ...cleaned(request), stream: false } })).data;
  }

  /** @deprecated Same as `chatCompletion` (virtual names such as `cb:smart-chat` route). */
  smartCompletion(request: ChatCompletionRequest): Promise<Record<string, any>> {
    return this.chatCompletion(request);
  }

  /** @deprecated One user message, the answer's text. */
  async chat(model: string, message: string, options: { systemPrompt?: string; temperature?: number; maxTokens?: number } = {}): Promise<string> {
    const messages: ChatMessage[] = [];
    if (options.systemPrompt) messages.push({ role: "system", content: options.systemPrompt });
    messages.push({ role: "user", content: message });
    const reply = await this.chatCompletion({ model, messages, temperature: options.temperature, max_tokens: options.maxTokens });
    return reply.choices?.[0]?.message?.content ?? "";
  }

  /** @deprecated `GET /v1/models`. */
  async listModels(): Promise<Array<{ id: string; owned_by: string }>> {
    return (await this.transport.request<{ data: Array<{ id: string; owned_by: string }> }>("GET", "/v1/models")).data.data;
  }

  /** @deprecated `chat.completion.chunk` objects of a streamed completion. */
  async *stream(request: ChatCompletionRequest): AsyncGenerator<Record<string, any>> {
    const reply = await this.transport.request("POST", "/v1/chat/completions", { body: { ...cleaned(request), stream: true }, stream: true });
    for await (const message of parseSSE(reply.response.body!)) {
      if (message.data === "[DONE]") return;
      const chunk = JSON.parse(message.data);
      if (chunk.error) throw errorFromObject({ ...chunk.error, type: chunk.error.code ?? chunk.error.type });
      yield chunk;
    }
  }

  /** @deprecated Callback form of `stream`. */
  async streamChatCompletion(request: ChatCompletionRequest, onChunk: (chunk: Record<string, any>) => void, onError?: (error: Error) => void): Promise<void> {
    try {
      for await (const chunk of this.stream(request)) onChunk(chunk);
    } catch (error) {
      if (!onError) throw error;
      onError(error as Error);
    }
  }
}

/** @deprecated The legacy agent builder: `createAgent(name)…build()` gives the body of
 * `client.agents.create(...)`. `setType` and `setMemory` have no equivalent and are kept as tags. */
export class AgentBuilder {
  private readonly body: AgentCreate & { parameters: Record<string, unknown>; tools: string[]; tags: string[] };

  constructor(name: string) {
    this.body = { name, model: COMMON_MODELS.SMART_BALANCED, parameters: {}, tools: [], tags: [] };
  }
  setName(name: string): this {
    this.body.name = name;
    return this;
  }
  setDescription(description: string): this {
    this.body.description = description;
    return this;
  }
  setType(type: string): this {
    this.body.tags.push(`type:${type}`);
    return this;
  }
  /** The provider is resolved from the model here; kept as `provider_type`. */
  setLLMProvider(providerType: string): this {
    this.body.provider_type = providerType;
    return this;
  }
  setModel(model: string): this {
    this.body.model = model;
    return this;
  }
  setTemperature(temperature: number): this {
    this.body.parameters.temperature = temperature;
    return this;
  }
  setMaxTokens(maxTokens: number): this {
    this.body.parameters.max_tokens = maxTokens;
    return this;
  }
  setSystemPrompt(prompt: string): this {
    this.body.system_prompt = prompt;
    return this;
  }
  /** Tools are named (built-in or MCP tools of the tenant); description and parameters come from the tool. */
  addTool(name: string, _description?: string, _parameters?: unknown): this {
    this.body.tools.push(name);
    return this;
  }
  setMemory(type: string, _options?: unknown): this {
    this.body.tags.push(`memory:${type}`);
    return this;
  }
  build(): AgentCreate {
    return structuredClone(this.body);
  }
}

/** @deprecated Use `client.agents.create({ name, model, system_prompt, … })`. */
export function createAgent(name: string): AgentBuilder {
  return new AgentBuilder(name);
}

/** @deprecated The legacy chat builder over `client.llm()`. Routing options
 * (`setRoutingStrategy`, `setTaskType`, …) are not sent: virtual model names route. */
export class ChatBuilder {
  private readonly request: ChatCompletionRequest;

  constructor(model: string) {
    this.request = { model, messages: [] };
  }
  setSystemPrompt(content: string): this {
    this.request.messages = [{ role: "system", content }, ...this.request.messages.filter((m) => m.role !== "system")];
    return this;
  }
  addUserMessage(content: string): this {
    this.request.messages.push({ role: "user", content });
    return this;
  }
  addAssistantMessage(content: string): this {
    this.request.messages.push({ role: "assistant", content });
    return this;
  }
  setTemperature(temperature: number): this {
    this.request.temperature = temperature;
    return this;
  }
  setMaxTokens(maxTokens: number): this {
    this.request.max_tokens = maxTokens;
    return this;
  }
  setStream(stream: boolean): this {
    this.request.stream = stream;
    return this;
  }
  setCircuitBreakerOptions(_options: unknown): this {
    return this;
  }
  setRoutingStrategy(_strategy: string): this {
    return this;
  }
  setMaxCostPer1kTokens(_cost: number): this {
    return this;
  }
  setTaskType(_task: string): this {
    return this;
  }
  setFallbackModels(_models: string[]): this {
    return this;
  }
  setMaxLatency(_ms: number): this {
    return this;
  }
  setBudgetConstraint(_budget: unknown): this {
    return this;
  }
  build(): ChatCompletionRequest {
    return structuredClone(this.request);
  }
  execute(llm: LegacyLLM): Promise<Record<string, any>> {
    return llm.chatCompletion(this.build());
  }
  executeSmart(llm: LegacyLLM): Promise<Record<string, any>> {
    return llm.smartCompletion(this.build());
  }
  async getResponse(llm: LegacyLLM): Promise<string> {
    return (await this.execute(llm)).choices?.[0]?.message?.content ?? "";
  }
}

/** @deprecated */
export const createChat = (model: string): ChatBuilder => new ChatBuilder(model);
/** @deprecated */
export const createSmartChat = (model: string = COMMON_MODELS.SMART_BALANCED): ChatBuilder => new ChatBuilder(model);
/** @deprecated */
export const createCostOptimizedChat = (): ChatBuilder => new ChatBuilder(COMMON_MODELS.SMART_CHEAP);
/** @deprecated */
export const createFastChat = (): ChatBuilder => new ChatBuilder(COMMON_MODELS.SMART_FAST);
/** @deprecated */
export const createBalancedChat = (): ChatBuilder => new ChatBuilder(COMMON_MODELS.SMART_BALANCED);

/** @deprecated Use `client.llm().chat(model, prompt)` (itself deprecated) or `client.agents.execute`. */
export const quickChat = (llm: LegacyLLM, model: string, prompt: string): Promise<string> => llm.chat(model, prompt);

interface HasGraphQL {
  graphql: GraphQLClient;
}

/** @deprecated Use `client.budgets.get("tenant")`. */
export const budgetStatus = (client: HasGraphQL): Promise<G.BudgetStatusGQL> => client.graphql.budgetStatus();
/** @deprecated Use `client.budgets.get("tenant")` (users are not accounts here: the tenant's budget). */
export const getUserBudgetStatus = (client: HasGraphQL, userId: string): Promise<G.BudgetStatusGQL> => client.graphql.budgetStatus({ userId });
/** @deprecated Use `client.budgets.get("agent:<id>")`. */
export const getProjectBudgetStatus = (client: HasGraphQL, projectId: string): Promise<G.BudgetStatusGQL> => client.graphql.budgetStatus({ projectId });
/** @deprecated Use `client.budgets.set("tenant", { limit_usd, period })`. */
export const setBudget = (client: HasGraphQL, limit: number, period: string): Promise<G.BudgetStatusGQL> =>
  client.graphql.setBudget({ limit, period, warningThreshold: 0.8 });
/** @deprecated Use `client.budgets.set("tenant", { limit_usd, period: "month" })`. */
export const setUserMonthlyBudget = (client: HasGraphQL, userId: string, limit: number): Promise<G.BudgetStatusGQL> =>
  client.graphql.setBudget({ limit, period: "monthly", warningThreshold: 0.8, userId });
/** @deprecated Use `client.analytics.usage({ from, to })`. */
export const costAnalytics = (client: HasGraphQL, startDate: string, endDate: string): Promise<G.CostAnalyticsGQL> =>
  client.graphql.costAnalytics({ startDate, endDate });
/** @deprecated Use `client.analytics.usage({ from, to })`. */
export function getUserMonthlyCostAnalytics(client: HasGraphQL, userId: string, year: number, month: number): Promise<G.CostAnalyticsGQL> {
  const start = new Date(Date.UTC(year, month - 1, 1));
  const end = new Date(Date.UTC(year, month, 0));
  const day = (d: Date) => d.toISOString().slice(0, 10);
  return client.graphql.costAnalytics({ startDate: day(start), endDate: day(end), userId });
}
