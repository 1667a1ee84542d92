/** Errors: one class per error `type` of the API, all under `CircuitBreakerError`. */

/** Base of every error the SDK throws. */
export class CircuitBreakerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server could not be reached, or the connection broke before an answer. */
export class APIConnectionError extends CircuitBreakerError {}

/** The server did not answer in time (or a stream's heartbeat never came). */
export class APITimeoutError extends APIConnectionError {}

/** A stream broke and could not be resumed within the allowed tries. */
export class StreamError extends CircuitBreakerError {}

/** A GraphQL answer carried errors that name no API error type. */
export class GraphQLError extends CircuitBreakerError {
  readonly errors: GraphQLErrorEntry[];
  constructor(message: string, errors: GraphQLErrorEntry[] = []) {
    super(message);
    this.errors = errors;
  }
}

export interface GraphQLErrorEntry {
  message: string;
  path?: Array<string | number>;
  extensions?: Record<string, unknown>;
}

export interface APIErrorInit {
  status?: number;
  errorType?: string;
  executionId?: string | null;
  details?: unknown;
  retryAfter?: number | null;
  body?: unknown;
  headers?: Headers;
}

/** An error answer of the API: `{"error": {"type", "message", …}}`. */
export class APIError extends CircuitBreakerError {
  /** The API's error type this class stands for. */
  static readonly type: string = "internal_error";
  /** HTTP status (absent for errors that arrived in a stream or a GraphQL answer). */
  readonly status?: number;
  /** The API's `type`, e.g. `rate_limited` (kept even when it has no class of its own). */
  readonly type: string;
  readonly executionId: string | null;
  readonly details: unknown;
  /** Seconds the server asked to wait (`Retry-After`), if it said. */
  readonly retryAfter: number | null;
  readonly body: unknown;
  readonly headers?: Headers;

  constructor(message: string, init: APIErrorInit = {}) {
    super(message);
    this.status = init.status;
    this.type = init.errorType ?? (this.constructor as typeof APIError).type;
    this.executionId = init.executionId ?? null;
    this.details = init.details;
    this.retryAfter = init.retryAfter ?? null;
    this.body = init.body;
    this.headers = init.headers;
  }
}

export class InternalError extends APIError {
  static override readonly type: string = "internal_error";
}
export class InvalidRequestError extends APIError {
  static override readonly type: string = "invalid_request";
}
export class PayloadTooLargeError extends APIError {
  static override readonly type: string = "payload_too_large";
}
export class MissingTenantError extends APIError {
  static override readonly type: string = "missing_tenant";
}
export class AuthenticationError extends APIError {
  static override readonly type: string = "authentication_failed";
}
export class PermissionDeniedError extends APIError {
  static override readonly type: string = "permission_denied";
}
export class NotFoundError extends APIError {
  static override readonly type: string = "not_found";
}
export class ConflictError extends APIError {
  static override readonly type: string = "conflict";
}
/** The tenant is over one of its limits; `retryAfter` says when to try again. */
export class RateLimitError extends APIError {
  static override readonly type: string = "rate_limited";
}
/** A hard budget would be exceeded; `details` names the budget and its spending. */
export class BudgetExceededError extends APIError {
  static override readonly type: string = "budget_exceeded";
}
export class ServiceUnavailableError extends APIError {
  static override readonly type: string = "service_unavailable";
}
export class OverloadedError extends ServiceUnavailableError {
  static override readonly type: string = "overloaded";
}
export class ExecutionInterruptedError extends APIError {
  static override readonly type: string = "execution_interrupted";
}
export class ExecutionCancelledError extends APIError {
  static override readonly type: string = "execution_cancelled";
}
/** A stream cannot be resumed exactly after the given id; `details.replayable_to` says how far. */
export class ResumeUnavailableError extends APIError {
  static override readonly type: string = "resume_unavailable";
}
export class ModelNotFoundError extends APIError {
  static override readonly type: string = "model_not_found";
}
export class ModelNotAllowedError extends APIError {
  static override readonly type: string = "model_not_allowed";
}
export class CapabilityNotSupportedError extends APIError {
  static override readonly type: string = "capability_not_supported";
}
export class UnknownToolError extends APIError {
  static override readonly type: string = "unknown_tool";
}
export class ToolIterationLimitError extends APIError {
  static override readonly type: string = "tool_iteration_limit";
}
export class NoModelAvailableError extends APIError {
  static override readonly type: string = "no_model_available";
}
export class ProviderError extends APIError {
  static override readonly type: string = "provider_error";
}
export class ProviderTimeoutError extends ProviderError {
  static override readonly type: string = "provider_timeout";
}
export class ProviderRateLimitedError extends ProviderError {
  static override readonly type: string = "provider_rate_limited";
}
export class ProviderAuthenticationError extends ProviderError {
  static override readonly type: string = "provider_authentication_failed";
}
export class ProviderRejectedRequestError extends ProviderError {
  static override readonly type: string = "provider_rejected_request";
}
export class ProviderOverloadedError extends ProviderError {
  static override readonly type: string = "provider_overloaded";
}
export class ContextLengthExceededError extends ProviderError {
  static override readonly type: string = "context_length_exceeded";
}
export class ProviderCircuitOpenError extends ProviderError {
  static override readonly type: string = "provider_circuit_open";
}

/** Every error class by the API `type` it stands for. */
export const ERROR_CLASSES: Record<string, typeof APIError> = Object.fromEntries(
  [
    InternalError, InvalidRequestError, PayloadTooLargeError, MissingTenantError, AuthenticationError,
    PermissionDeniedError, NotFoundError, ConflictError, RateLimitError, BudgetExceededError,
    ServiceUnavailableError, OverloadedError, ExecutionInterruptedError, ExecutionCancelledError,
    ResumeUnavailableError, ModelNotFoundError, ModelNotAllowedError, CapabilityNotSupportedError,
    UnknownToolError, ToolIterationLimitError, NoModelAvailableError, ProviderError, ProviderTimeoutError,
    ProviderRateLimitedError, ProviderAuthenticationError, ProviderRejectedRequestError,
    ProviderOverloadedError, ContextLengthExceededError, ProviderCircuitOpenError,
  ].map((cls) => [cls.type, cls]),
);

const BY_STATUS: Record<number, typeof APIError> = {
  400: InvalidRequestError, 401: AuthenticationError, 402: BudgetExceededError,
  403: PermissionDeniedError, 404: NotFoundError, 409: ConflictError, 410: ResumeUnavailableError,
  413: PayloadTooLargeError, 429: RateLimitError, 502: ProviderError, 503: ServiceUnavailableError,
  504: ProviderTimeoutError,
};

/** Seconds from a `Retry-After` header (delta seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null | undefined): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

/** The typed error for an API error object (`{"type", "message", …}`). */
export function errorFromObject(
  data: Record<string, unknown>,
  init: Omit<APIErrorInit, "errorType" | "executionId" | "details"> = {},
): APIError {
  const type = typeof data.type === "string" ? data.type : "";
  const cls = ERROR_CLASSES[type] ?? BY_STATUS[init.status ?? 0] ?? APIError;
  const retryAfter = init.retryAfter ?? (typeof data.retry_after === "number" ? data.retry_after : null);
  return new cls(String(data.message || type || `HTTP ${init.status}`), {
    ...init,
    retryAfter,
    errorType: type || cls.type,
    executionId: (data.execution_id as string | undefined) ?? null,
    details: data.details,
  });
}

/** The typed error for an HTTP error answer (a JSON error body or not). */
export function errorFromResponse(status: number, headers: Headers, body: unknown, text: string): APIError {
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  if (body && typeof body === "object" && "error" in body && body.error && typeof body.error === "object") {
    const data = { ...(body.error as Record<string, unknown>) };
    data.execution_id ??= (body as Record<string, unknown>).execution_id;
    // OpenAI's shape (/v1/*): `code` is this API's type
    if (typeof data.code === "string" && !(String(data.type) in ERROR_CLASSES)) data.type = data.code;
    return errorFromObject(data, { status, retryAfter, body, headers });
  }
  const cls = BY_STATUS[status] ?? APIError;
  return new cls(text.slice(0, 500) || `HTTP ${status}`, { status, errorType: cls.type, retryAfter, body, headers });
}
