// Compiled (never run) by `npm test`: the public types say what the docs say. A wrong use
// below is marked @ts-expect-error, so the check fails if the types stop refusing it.
import {
  Client, RateLimitError, APIError, ERROR_CLASSES, type ExecutionResult, type StreamEvent, type Agent,
  type GraphQLTypes, COMMON_MODELS, createAgent, type SubjectExportLine, type Retention,
} from "../dist/index.js";

export async function usage(client: Client): Promise<void> {
  const agent: Agent = await client.agents.create({ name: "n", model: "cb:smart-chat", system_prompt: "s", parameters: { temperature: 0.1 } });
  // @ts-expect-error: request fields keep the API's snake_case names
  await client.agents.create({ name: "n", model: "m", systemPrompt: "s" });
  // @ts-expect-error: a prompt is required
  await client.agents.execute(agent.id, {});
  const result: ExecutionResult = await client.agents.execute(agent.id, { prompt: "p", parameters: { max_tokens: 10 } });
  const content: string | undefined = result.response?.content;
  for await (const ev of client.agents.stream(agent.id, { prompt: "p", stream_options: { heartbeat_s: 5 } })) {
    const event: StreamEvent = ev;
    if (event.type === "content_chunk") {
      const delta: string = event.delta;
      void delta;
    } else if (event.type === "execution_complete") {
      const done: ExecutionResult = event.result;
      void done;
    } else if (event.type === "error") {
      const type: string = event.error_type;
      void type;
    }
  }
  const mode: "rest" | "graphql" = client.mode;
  client.pin("graphql");
  // @ts-expect-error: only the three modes
  client.pin("soap");
  const node: GraphQLTypes.AgentDefinitionGQL | null = await client.graphql.agent(agent.id);
  const retryAfter: number | null = new RateLimitError("x").retryAfter;
  const cls: typeof APIError = ERROR_CLASSES.rate_limited;
  const model: "cb:coding" = COMMON_MODELS.SMART_CODING;
  await client.agents.create(createAgent("legacy").setModel(model).build());
  void [content, mode, node, retryAfter, cls];
}

export async function privacy(client: Client, agentId: string): Promise<void> {
  await client.agents.execute(agentId, { prompt: "p", subject: "user-42" });
  client.agents.stream(agentId, { prompt: "p", subject: "user-42" });
  // @ts-expect-error: a subject is a string id
  await client.agents.execute(agentId, { prompt: "p", subject: 42 });
  const ref: string = (await client.subjects.list("user-42")).subject_ref;
  const erased: "erased" | undefined = (await client.subjects.list("user-42")).executions[0]?.payload;
  const lines: SubjectExportLine[] = await client.subjects.export("user-42");
  const first = lines[0];
  if (first?.kind === "execution") void first.data.execution_id;
  const keys: number = (await client.subjects.erase("user-42")).keys_destroyed;
  const kept: Retention | null = (await client.retention.set({ payload_days: 30 })).retention;
  // @ts-expect-error: payload_days is required
  await client.retention.set({ metrics_days: 30 });
  await client.retention.clear();
  void [ref, erased, keys, kept, (await client.retention.get()).retention?.metrics_days];
}
