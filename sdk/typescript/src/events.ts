/** Typed stream events: each has `type` (the SSE event name) and `event_id` (the SSE id). */
import type { ExecutionResult, Usage } from "./types.js";

interface Base {
  /** The SSE id (ids increase by one within an execution; null on an event sent without one). */
  event_id: number | null;
  execution_id?: string;
}

export interface ExecutionStart extends Base {
  type: "execution_start";
  agent_id: string;
  model_requested: string;
  model_resolved: string | null;
  provider: string | null;
}

export interface ContentChunk extends Base {
  type: "content_chunk";
  delta: string;
}

export interface ToolCall extends Base {
  type: "tool_call";
  turn: number;
  id: string;
  function: { name: string; arguments: string };
}

export interface ToolResult extends Base {
  type: "tool_result";
  call_id: string;
  name: string;
  arguments: unknown;
  result: unknown;
  error: { type: string; message: string } | null;
  duration_ms: number;
}

export interface UsageUpdate extends Base, Usage {
  type: "usage_update";
  estimated: boolean;
}

/** The runtime running the execution stopped and it runs again from the start: the content
 * before this event is void; the new attempt's events follow (`attempt` counts from 1). */
export interface AttemptRestarted extends Base {
  type: "attempt_restarted";
  attempt: number;
  reason: { type: string; message: string };
}

export interface ExecutionComplete extends Base {
  type: "execution_complete";
  /** The same result `agents.execute` answers. */
  result: ExecutionResult;
}

/** A terminal error; `error_type` is the API's error type (`rate_limited`, …). */
export interface ErrorEvent extends Base {
  type: "error";
  error_type: string;
  message: string;
  details?: unknown;
}

export type StreamEvent =
  | ExecutionStart
  | ContentChunk
  | ToolCall
  | ToolResult
  | UsageUpdate
  | AttemptRestarted
  | ExecutionComplete
  | ErrorEvent;

export const TERMINAL_EVENTS = new Set(["execution_complete", "error"]);
const KNOWN = new Set(["execution_start", "content_chunk", "tool_call", "tool_result", "usage_update", "attempt_restarted"]);

/** The typed event of one SSE message; null for an event type this SDK does not know (the
 * API says clients should ignore those). */
export function toEvent(name: string, id: number | null, data: Record<string, unknown>): StreamEvent | null {
  if (name === "execution_complete") {
    return { type: name, event_id: id, execution_id: data.execution_id as string, result: data as unknown as ExecutionResult };
  }
  if (name === "error") {
    const inner = (data.error && typeof data.error === "object" ? data.error : data) as Record<string, unknown>;
    return {
      type: "error",
      event_id: id,
      execution_id: (inner.execution_id ?? data.execution_id) as string | undefined,
      error_type: String(inner.type ?? "internal_error"),
      message: String(inner.message ?? ""),
      details: inner.details,
    };
  }
  if (!KNOWN.has(name)) return null;
  return { ...data, type: name, event_id: id } as StreamEvent;
}
