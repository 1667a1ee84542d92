// The legacy SDK's names on the new client: builders, chat helpers, COMMON_MODELS, budget helpers.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  COMMON_MODELS, createAgent, createChat, createSmartChat, createFastChat, quickChat, budgetStatus, setBudget,
  getUserBudgetStatus, setUserMonthlyBudget, costAnalytics, getUserMonthlyCostAnalytics, getProjectBudgetStatus,
} from "../dist/index.js";
import { client, unique } from "./helpers.mjs";

test("legacy: the createAgent builder feeds client.agents.create", async () => {
  const c = client();
  const body = createAgent(unique("built")).setDescription("built").setModel(COMMON_MODELS.SMART_BALANCED)
    .setTemperature(0).setMaxTokens(200).setSystemPrompt("Be legacy.").addTool("roi_calculator", "roi", {})
    .setType("conversational").build();
  const agent = await c.agents.create(body);
  assert.equal(agent.model, "cb:smart-chat");
  assert.equal(agent.parameters.temperature, 0, "0 stays 0 (the legacy SDK made it 0.7)");
  assert.equal(agent.parameters.max_tokens, 200);
  assert.deepEqual(agent.tools, ["roi_calculator"]);
  assert.ok(agent.tags.includes("type:conversational"));
});

test("legacy: llm().chat, chat builders, streams and model listing", async () => {
  const c = client();
  const llm = c.llm();
  assert.equal(await llm.chat(COMMON_MODELS.SMART_BALANCED, "plain chat", { systemPrompt: "sys", maxTokens: 50 }), "Echo: plain chat");
  const reply = await createChat("gpt-4o-mini").setSystemPrompt("s").addUserMessage("built chat").setTemperature(0.1).execute(llm);
  assert.equal(reply.choices[0].message.content, "Echo: built chat");
  const smart = await createSmartChat(COMMON_MODELS.SMART_BALANCED).setTaskType("coding").setRoutingStrategy("performance_first")
    .addUserMessage("smart chat").getResponse(llm);
  assert.equal(smart, "Echo: smart chat");
  assert.equal(await quickChat(llm, "gpt-4o-mini", "quick"), "Echo: quick");
  const chunks = [];
  await llm.streamChatCompletion(createFastChat().addUserMessage("stream it").setStream(true).build(), (chunk) => chunks.push(chunk));
  assert.equal(chunks.map((ch) => ch.choices?.[0]?.delta?.content ?? "").join(""), "Echo: stream it");
  assert.ok((await llm.listModels()).some((m) => m.id === "cb:smart-chat"));
});

test("legacy: budget and cost helpers", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("project"), model: "cb:smart-chat" });
  assert.equal((await setBudget(c, 40, "monthly")).limit, 40);
  assert.equal((await budgetStatus(c)).budgetId, "tenant");
  assert.equal((await getUserBudgetStatus(c, "someone")).limit, 40);
  assert.equal((await setUserMonthlyBudget(c, "someone", 45)).limit, 45);
  await c.budgets.set(`agent:${agent.id}`, { limit_usd: 5, period: "day" });
  assert.equal((await getProjectBudgetStatus(c, agent.id)).budgetId, `agent:${agent.id}`);
  const day = new Date().toISOString().slice(0, 10);
  assert.equal(typeof (await costAnalytics(c, day, day)).totalCost, "number");
  const now = new Date();
  assert.ok((await getUserMonthlyCostAnalytics(c, "someone", now.getUTCFullYear(), now.getUTCMonth() + 1)).periodStart);
  await c.budgets.remove("tenant");
  await c.budgets.remove(`agent:${agent.id}`);
});
