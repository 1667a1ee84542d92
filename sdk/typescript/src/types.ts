/** Request and response shapes of the REST API, in its snake_case names. Request bodies are
 * generated from the server's OpenAPI (`src/generated/openapi.ts`); responses, which the
 * OpenAPI leaves open, are written down here from docs/api.md. */
import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];
export type AgentCreate = Schemas["AgentCreate"];
export type AgentUpdate = Schemas["AgentUpdate"];
/** `subject` is written here by hand until `src/generated` is regenerated from a server
 * that has it (the intersection stays right afterwards). */
export type ExecuteRequest = Schemas["ExecuteRequest"] & {
  /** The data subject (the end user) the execution is about, 1–256 characters: its payload
   * can then be listed, exported and erased by it (`client.subjects`). Send an opaque id. */
  subject?: string | null;
};
export type StreamOptions = Schemas["domain__schemas__StreamOptions"];
export type Parameters = Schemas["Parameters"];
export type BudgetInput = Schemas["Budget"];
export type McpServerCreate = Schemas["McpServerCreate"];
export type VirtualModelInput = Schemas["VirtualModel"];
export type ModelPolicy = Schemas["ModelPolicy"];
export type ChatCompletionRequest = Schemas["ChatCompletionRequest"];

/** Fields a server may add later are kept (`[key: string]: unknown`). */
interface Open {
  [key: string]: unknown;
}

export interface Agent extends Open {
  id: string;
  name: string;
  description?: string;
  model?: string | null;
  system_prompt?: string;
  user_template?: string;
  parameters?: Parameters;
  tools?: string[];
  capabilities?: string[];
  tags?: string[];
  version?: number;
  created_at?: string;
  updated_at?: string;
}

export interface Usage extends Open {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd?: number | null;
  cached_tokens?: number;
  estimated?: boolean;
}

export interface ExecutionResponse extends Open {
  content: string;
  tool_calls?: unknown[];
  tool_results?: unknown[];
  finish_reason?: string | null;
}

/** What `POST /api/v1/agents/{id}/execute` answers (and `execution_complete` carries). */
export interface ExecutionResult extends Open {
  execution_id: string;
  agent_id: string;
  status: string;
  response: ExecutionResponse | null;
  usage: Usage | null;
  metadata: Record<string, unknown> | null;
  error: { type: string; message: string; [key: string]: unknown } | null;
  /** `graphql` when the result came over GraphQL (failover); absent over REST. */
  surface?: "rest" | "graphql";
}

/** An execution as history shows it (`GET /api/v1/executions/{id}`). */
export interface Execution extends Open {
  execution_id: string;
  agent_id: string | null;
  kind?: string;
  status: "running" | "completed" | "failed" | "cancelled" | string;
  usage?: Usage | null;
  response?: ExecutionResponse | null;
  error?: { type: string; message: string } | null;
  last_event_id?: number;
  /** `"erased"` once its payload was erased (its data subject's, or by retention). */
  payload?: "erased";
}

export interface ExecutionPage {
  executions: Execution[];
  next_before: string | null;
}

export interface ModelInfo extends Open {
  id: string;
  kind: "virtual" | "concrete";
}

export interface Tool extends Open {
  name: string;
  description?: string;
  input_schema?: unknown;
  source?: string;
}

export interface McpServer extends Open {
  id: string;
  name: string;
  transport: string;
}

export interface Budget extends Open {
  scope: string;
  limit_usd: number;
  period: "day" | "month";
  enforcement: "hard" | "soft";
  thresholds: number[];
  spent_usd: number;
  reserved_usd: number;
  remaining_usd: number;
}

export interface AuditEntry extends Open {
  at: number;
  kind: string;
  actor: string | null;
}

/** An execution of a data subject (`client.subjects.list`): history's view with its request. */
export interface SubjectExecution extends Execution {
  /** The request (prompt, context, parameters…); `{ erased: true }` once erased. */
  input?: Record<string, unknown> | null;
}

/** `GET /api/v1/subjects/{subject}`: the subject's executions, newest first. */
export interface SubjectExecutions extends Open {
  /** The one-way reference the gateway keeps instead of the id. */
  subject_ref: string;
  executions: SubjectExecution[];
}

/** One line of `GET /api/v1/subjects/{subject}/export`: each execution, then every event of them. */
export type SubjectExportLine =
  | { kind: "execution"; data: SubjectExecution }
  | { kind: "event"; aggregate_id: string; version: number; topic: string; timestamp?: string; data: Record<string, unknown>; [key: string]: unknown };

/** `DELETE /api/v1/subjects/{subject}`: how many executions it had and keys were destroyed. */
export interface SubjectErasure extends Open {
  subject_ref: string;
  executions: number;
  keys_destroyed: number;
}

/** A tenant's retention: payloads kept `payload_days` days, executions `metrics_days` (null: forever). */
export interface Retention {
  payload_days: number;
  metrics_days: number | null;
}

/** What `PUT /api/v1/retention` takes (`metrics_days` at least `payload_days`; 1–36500 days). */
export interface RetentionInput {
  payload_days: number;
  metrics_days?: number | null;
}

/** What the retention routes answer (`retention: null`: everything is kept). */
export interface RetentionSetting {
  retention: Retention | null;
}

/** `POST /api/v1/executions/{id}/feedback`: a score in [0, 1] (`true`/`false`: 1 and 0). */
export interface FeedbackInput {
  score: number | boolean;
  label?: string;
  comment?: string;
  /** `user` by default; judges give `judge`. */
  source?: string;
}

/** A recorded score. */
export interface FeedbackGiven {
  feedback_id: string;
  execution_id: string;
  score: number;
  label: string | null;
  comment: string | null;
  source: string;
  by: string;
}

/** A judge: a model scoring answers against a rubric (`relevance`, `correctness`, `format`, or
 * one's own name with `criteria`); `sample_rate` is the share of executions judged. */
export interface JudgeSpec {
  model: string;
  rubric?: string;
  criteria?: string | null;
  sample_rate?: number;
}

/** A judge's answer: a verdict, or why there is none; `judge` says what it took. */
export interface JudgeVerdict {
  score?: number;
  reason?: string;
  error?: { type: string; message: string };
  judge: Record<string, any>;
}

/** `POST /api/v1/experiments`. */
export interface ExperimentInput {
  name: string;
  source: { agent_id?: string; from?: string | number; to?: string | number; status?: string; limit?: number };
  variants: Array<{ name: string; model?: string; agent_id?: string; parameters?: Record<string, any> }>;
  judge?: JudgeSpec;
  budget_usd?: number;
  concurrency?: number;
}

/** An experiment's report: per variant its figures, per source the outputs side by side. */
export interface ExperimentReport {
  id: string;
  name: string;
  status: "running" | "completed" | "cancelled" | "failed";
  stopped: string | null;
  progress: { runs: number; of: number };
  spent_usd: number;
  budget_usd: number;
  variants: Array<Record<string, any>>;
  sources: Array<Record<string, any>>;
  [key: string]: any;
}

/** A collaboration's step: an agent, or a model with a system prompt, on a template input. */
export interface CollaborationStep {
  id: string;
  agent_id?: string;
  model?: string;
  system_prompt?: string;
  parameters?: Record<string, any>;
  /** With `{{inputs.NAME}}` and `{{steps.ID.output}}` (or `{{steps.ID.output.json.path}}`). */
  input: string;
  depends_on?: string[];
  on_failure?: "fail" | "skip_dependents" | "continue";
  timeout_s?: number;
  retries?: number;
}

/** `POST /api/v1/collaborations`. */
export interface CollaborationDefinition {
  name: string;
  description?: string;
  inputs?: Record<string, Record<string, any> | null>;
  steps: CollaborationStep[];
  output?: string | null;
}

/** A collaboration run, as `…/run` answers and `GET /api/v1/collaboration-runs/{id}` shows it. */
export interface CollaborationRun {
  run_id: string;
  collaboration_id: string | null;
  version: number | null;
  name: string;
  status: "running" | "completed" | "failed" | "cancelled";
  output: string | null;
  error: { type: string; message: string; step_id?: string } | null;
  inputs: Record<string, any>;
  steps: Array<{ id: string; status: string; attempts: number; execution_id: string | null; execution_ids: string[];
    input: string | null; output: any; error: Record<string, any> | null; usage: Record<string, any> | null }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; cost_usd: number };
  [key: string]: any;
}
