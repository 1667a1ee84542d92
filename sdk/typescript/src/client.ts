/** The client: configuration, the resources, and failover between REST and GraphQL. */
import { APIConnectionError, APIError, CircuitBreakerError, NoModelAvailableError, ProviderError } from "./errors.js";
import { GraphQLClient, type WebSocketLike } from "./graphql.js";
import { DEFAULT_RETRY, type FetchLike, neverSent, type RetryPolicy, Transport } from "./http.js";
import { LegacyLLM } from "./legacy.js";
import {
  Agents, Analytics, Audit, Budgets, Collaborations, Deprecations, Executions, Experiments, JudgeResource, McpServers, Models, RetentionResource, Subjects,
  type Surfaces, Tools,
} from "./resources.js";

export type Mode = "auto" | "rest" | "graphql";
export type Surface = "rest" | "graphql";

export interface ClientOptions {
  /** The server, e.g. `https://cb.example.com` (default: `CB_BASE_URL`). */
  baseUrl?: string;
  /** Default: `CB_TENANT_ID`. */
  tenantId?: string;
  /** A tenant API key `cbk_…` (default: `CB_API_KEY`). */
  apiKey?: string;
  /** Called before each request for a fresh bearer token (a JWT); wins over `apiKey`. */
  getToken?: () => string | Promise<string>;
  /** Per attempt, until the answer's headers for streams (default 60000). */
  timeoutMs?: number;
  /** Retries on 429, 503 and connection errors (default 2). */
  maxRetries?: number;
  /** Backoff tuning beyond `maxRetries`. */
  retry?: Partial<RetryPolicy>;
  /** `auto` (REST, failing over to GraphQL and back), or pinned to one surface. */
  mode?: Mode;
  /** After a failover to GraphQL, REST is tried first again after this long (default 30000 ms). */
  failoverCooldownMs?: number;
  /** A `fetch` to use instead of the global one (proxies, tests). */
  fetch?: FetchLike;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** A WebSocket constructor for subscriptions (default: the global `WebSocket`). */
  webSocket?: WebSocketLike;
  /** Called on each switch of surface, with the failure that caused it (none on a return to REST). */
  onFailover?: (mode: Surface, reason?: Error) => void;
}

function env(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name] || undefined;
}

/** Whether a failure says the surface is down (unreachable, or a 5xx that is not an
 * execution's outcome: no execution id, not a provider's failure), not that the call was
 * wrong. With `mayHaveRun` (a POST that runs or creates something), only a failure that
 * cannot have run it counts: a connection never made, or a 5xx that recorded nothing. */
export function surfaceDown(error: unknown, mayHaveRun = false): boolean {
  if (error instanceof APIConnectionError) return !mayHaveRun || neverSent(error.cause);
  if (!(error instanceof APIError) || error.status === undefined || error.status < 500) return false;
  if (error instanceof ProviderError || error instanceof NoModelAvailableError) return false;
  return !error.executionId;
}

/** One operation on both surfaces; `graphql` null when this call has no GraphQL form. */
export interface DualCall<T> {
  rest: () => Promise<T>;
  graphql: (() => Promise<T>) | null;
  /** A POST that runs or creates something: fail over only when it cannot have run. */
  mayHaveRun?: boolean;
}

export class Client implements Surfaces {
  readonly baseUrl: string;
  readonly tenantId: string;
  readonly transport: Transport;
  readonly graphql: GraphQLClient;
  readonly agents: Agents;
  readonly executions: Executions;
  readonly models: Models;
  readonly tools: Tools;
  readonly mcpServers: McpServers;
  readonly analytics: Analytics;
  readonly budgets: Budgets;
  readonly audit: Audit;
  readonly deprecations: Deprecations;
  readonly subjects: Subjects;
  readonly retention: RetentionResource;
  readonly judge: JudgeResource;
  readonly experiments: Experiments;
  readonly collaborations: Collaborations;
  /** Each switch of surface, oldest first: [surface, why]. */
  readonly failovers: Array<[Surface, string]> = [];
  private pinned: Mode;
  private active: Surface = "rest";
  private failedOverAt = 0;
  private readonly cooldownMs: number;
  private readonly onFailover?: (mode: Surface, reason?: Error) => void;

  constructor(options: ClientOptions = {}) {
    const baseUrl = options.baseUrl ?? env("CB_BASE_URL");
    if (!baseUrl) throw new CircuitBreakerError("no base URL: pass `baseUrl` or set CB_BASE_URL");
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.tenantId = options.tenantId ?? env("CB_TENANT_ID") ?? "";
    const apiKey = options.apiKey ?? (options.getToken ? undefined : env("CB_API_KEY"));
    const fetcher = options.fetch ?? globalThis.fetch?.bind(globalThis);
    if (!fetcher) throw new CircuitBreakerError("no fetch: pass `fetch`");
    this.transport = new Transport({
      baseUrl: this.baseUrl,
      tenantId: this.tenantId || undefined,
      apiKey,
      getToken: options.getToken,
      timeoutMs: options.timeoutMs ?? 60000,
      retry: { ...DEFAULT_RETRY, ...options.retry, maxRetries: options.maxRetries ?? options.retry?.maxRetries ?? DEFAULT_RETRY.maxRetries },
      fetch: fetcher,
      headers: options.headers ?? {},
    });
    this.pinned = options.mode ?? "auto";
    if (this.pinned === "graphql") this.active = "graphql";
    this.cooldownMs = options.failoverCooldownMs ?? 30000;
    this.onFailover = options.onFailover;
    this.graphql = new GraphQLClient(this.transport, options.webSocket);
    this.agents = new Agents(this.transport, this.graphql, this);
    this.executions = new Executions(this.transport, this.graphql, this);
    this.models = new Models(this.transport, () => this.tenantId);
    this.tools = new Tools(this.transport);
    this.mcpServers = new McpServers(this.transport);
    this.analytics = new Analytics(this.transport);
    this.budgets = new Budgets(this.transport);
    this.audit = new Audit(this.transport);
    this.deprecations = new Deprecations(this.transport);
    this.subjects = new Subjects(this.transport);
    this.retention = new RetentionResource(this.transport);
    this.judge = new JudgeResource(this.transport);
    this.experiments = new Experiments(this.transport);
    this.collaborations = new Collaborations(this.transport);
  }

  /** The surface the operations both offer go over now: `rest` or `graphql`. */
  get mode(): Surface {
    return this.pinned === "auto" ? this.active : this.pinned;
  }

  /** What was asked for: `auto`, or the surface it is pinned to. */
  get pinnedMode(): Mode {
    return this.pinned;
  }

  /** Pin to one surface (`rest`, `graphql`) or go back to `auto`. */
  pin(mode: Mode): void {
    this.pinned = mode;
    this.active = mode === "graphql" ? "graphql" : "rest";
  }

  /** Run an operation on the current surface; in `auto` mode, when that surface is down
   * (unreachable or 5xx) try the other one, and keep using whichever answered. */
  async run<T>({ rest, graphql, mayHaveRun = false }: DualCall<T>): Promise<T> {
    if (this.pinned === "graphql" && graphql) return graphql();
    if (this.pinned !== "auto" || !graphql) return rest();
    // after a failover, REST is tried first again once the cool-down has passed
    const cooled = this.active === "graphql" && Date.now() - this.failedOverAt >= this.cooldownMs;
    const first: Surface = cooled ? "rest" : this.active;
    const other: Surface = first === "rest" ? "graphql" : "rest";
    const [primary, secondary] = first === "rest" ? [rest, graphql] : [graphql, rest];
    let answer: T;
    try {
      answer = await primary();
    } catch (error) {
      if (!surfaceDown(error, mayHaveRun)) throw error;
      try {
        answer = await secondary();
      } catch (second) {
        throw surfaceDown(second, mayHaveRun) ? error : second;
      }
      this.switchTo(other, error as Error);
      return answer;
    }
    this.switchTo(first);
    return answer;
  }

  private switchTo(surface: Surface, reason?: Error): void {
    if (surface === "graphql" && reason) this.failedOverAt = Date.now();
    if (surface === this.active) return;
    this.active = surface;
    this.failovers.push([surface, reason ? reason.message : "REST answers again"]);
    this.onFailover?.(surface, reason);
  }

  /** `GET /health`: whether the server process answers. */
  async health(): Promise<boolean> {
    try {
      await this.transport.request("GET", "/health", { maxRetries: 0 });
      return true;
    } catch {
      return false;
    }
  }

  /** @deprecated The legacy SDK's `client.llm()`: chat completions over `/v1/chat/completions`. */
  llm(): LegacyLLM {
    return new LegacyLLM(this.transport);
  }
}
