/** `@circuit-breaker/sdk`: the Circuit Breaker client for REST, SSE and GraphQL. */
export { Client, surfaceDown, type ClientOptions, type DualCall, type Mode, type Surface } from "./client.js";
export * from "./errors.js";
export type * from "./events.js";
export { ExecutionStream, type StreamControl } from "./stream.js";
export { GraphQLClient, AGENT_FIELDS, EXTENDED_AGENT_FIELDS, type Subscription, type WebSocketLike, type QueryOptions } from "./graphql.js";
export { DEFAULT_RETRY, retryWaitMs, type FetchLike, type RetryPolicy } from "./http.js";
export type * from "./types.js";
export type { ExecutionListParams, StreamRequest, AnalyticsParams, AuditParams, BudgetEvent, CallOptions } from "./resources.js";
export type * as GraphQLTypes from "./generated/graphql.js";
export type { paths, components } from "./generated/openapi.js";
export {
  COMMON_MODELS, AgentBuilder, ChatBuilder, LegacyLLM, createAgent, createChat, createSmartChat, createCostOptimizedChat,
  createFastChat, createBalancedChat, quickChat, budgetStatus, getUserBudgetStatus, getProjectBudgetStatus, setBudget,
  setUserMonthlyBudget, costAnalytics, getUserMonthlyCostAnalytics, type ChatCompletionRequest as LegacyChatCompletionRequest, type ChatMessage,
} from "./legacy.js";
