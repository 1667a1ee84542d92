"""Rewriting TypeScript/JavaScript uses of the legacy `circuit-breaker-sdk` into
`@circuit-breaker/sdk`, on the tree-sitter tree: each rewrite replaces the exact bytes of
parsed nodes. What has no sure rewrite becomes a `ManualItem`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphql import GraphQLSchema
from tree_sitter import Node

from migration.edits import EditSet, ManualItem, line_of
from migration.graphql_fixes import fix_literals, root_fields
from migration.rest_equivalents import rest_hint
from migration.source_scan import Literal, parse_ts, ts_literal, ts_literals, walk

LEGACY = "circuit-breaker-sdk"
NEW = "@circuit-breaker/sdk"
COMMON_MODELS = {
    "SMART_FAST": "cb:fastest", "SMART_CHEAP": "cb:cost-optimal", "SMART_BALANCED": "cb:smart-chat",
    "SMART_CREATIVE": "cb:creative", "SMART_CODING": "cb:coding", "SMART_ANALYSIS": "cb:analysis",
    "GPT_O4_MINI": "o4-mini-2025-04-16", "CLAUDE_4_SONNET": "claude-sonnet-4-20250514",
    "GEMINI_PRO": "gemini-2.5-pro", "QWEN_CODER_3B": "qwen2.5-coder:3b",
    "NOMIC_EMBED": "nomic-embed-text:latest", "ALL_MINILM": "all-minilm:l6-v2",
}  # fmt: skip
# legacy names the new package also exports (the deprecated ones from its legacy.ts)
KEPT_NAMES = {
    "Client", "COMMON_MODELS", "createAgent", "createChat", "createSmartChat",
    "createCostOptimizedChat", "createFastChat", "createBalancedChat", "quickChat", "budgetStatus",
    "getUserBudgetStatus", "getProjectBudgetStatus", "setBudget", "setUserMonthlyBudget",
    "costAnalytics", "getUserMonthlyCostAnalytics", "ChatMessage", "AgentBuilder", "ChatBuilder",
    "CircuitBreakerError", "NotFoundError", "ClientOptions",
}  # fmt: skip
ROUTING_SETTERS = {
    "setRoutingStrategy", "setTaskType", "setCircuitBreakerOptions", "setMaxCostPer1kTokens",
    "setFallbackModels", "setMaxLatency", "setBudgetConstraint",
}  # fmt: skip
CHAT_FACTORIES = {
    "createChat", "createSmartChat", "createCostOptimizedChat", "createFastChat",
    "createBalancedChat",
}  # fmt: skip
AGENT_SETTERS = {
    "setName", "setDescription", "setType", "setLLMProvider", "setModel", "setTemperature",
    "setMaxTokens", "setSystemPrompt", "addTool", "setMemory",
}  # fmt: skip
LLM_KEPT = {"chat", "chatCompletion", "smartCompletion", "listModels", "stream"}
NO_EQUIVALENT = {
    "mcp": "MCP: the legacy MCP GraphQL operations were BROKEN;"
    " use `client.mcpServers.register/list/refresh/remove`",
    "subscriptions": "use `client.graphql.costUpdates(userId)` or"
    " `client.graphql.subscribe(query, vars)` (async iterables: `for await`),"
    " or `client.budgets.events()`",
    "workflows": "workflows are not part of the gateway: no equivalent",
    "resources": "resources are not part of the gateway: no equivalent",
    "rules": "rules are not part of the gateway: no equivalent",
    "functions": "functions are not part of the gateway: no equivalent",
    "nats": "NATS is not part of the gateway: no equivalent",
    "ping": "use `await client.health()` (a boolean)",
    "info": "no equivalent: `client.models.list()` and `client.tools.list()` say what it offers",
    "getConfig": "no equivalent: read `client.baseUrl`, `client.tenantId`",
    "graphqlRequest": "use `client.graphql.query(query, variables)`",
    "restRequest": "call the resource of `client` (agents, executions, models, budgets, …)",
    "request": "call the resource of `client` (agents, executions, models, budgets, …)",
}  # fmt: skip
ACCESSORS = {"mcp", "subscriptions", "workflows", "resources", "rules", "functions", "nats"}
HELPERS_BY_HAND = {
    "createSDK": "use `new Client({ baseUrl, apiKey })`",
    "createSimpleSDK": "use `new Client({ baseUrl, apiKey })`",
    "createMCPServer": "MCP (BROKEN in the legacy SDK):"
    " use `client.mcpServers.register({ name, transport, url })`",
    "listMCPServers": "use `client.mcpServers.list()`",
    "getMCPServerHealth": "use `client.mcpServers.list()` (each server's health)",
    "getCustomMCPServer": "it created a server: use `client.mcpServers.register(...)`",
    "subscribeCostUpdates": "use `for await (const update of client.graphql.costUpdates(userId))`",
    "subscribeLLMStream": "use `for await (const chunk of client.llm().stream(request))`",
    "subscribeResourceUpdates": "resources are not part of the gateway: no equivalent",
    "subscribeWorkflowEvents": "workflows are not part of the gateway: no equivalent",
}  # fmt: skip


def prop(key: str, value: str) -> str:
    """An object literal's property, in shorthand when the value is the key's variable."""
    return key if key == value else f"{key}: {value}"


def text(node: Node | None) -> str:
    return "" if node is None or node.text is None else node.text.decode()


@dataclass
class Step:
    """One `.name(args)` call of a chain."""

    name: str
    args: list[Node]
    call: Node
    member: Node


def chain(node: Node) -> tuple[Node, list[Step]]:
    """`root.a(x).b(y)` as (root, [a(x), b(y)])."""
    steps: list[Step] = []
    while node.type == "call_expression":
        func = node.child_by_field_name("function")
        args = node.child_by_field_name("arguments")
        if func is None or func.type != "member_expression":
            break
        prop = func.child_by_field_name("property")
        named = [a for a in (args.named_children if args else []) if a.type != "comment"]
        steps.insert(0, Step(text(prop), named, node, func))
        node = func.child_by_field_name("object")  # type: ignore[assignment]
    return node, steps


def is_chain_top(node: Node) -> bool:
    parent = node.parent
    return not (
        parent is not None
        and parent.type == "member_expression"
        and parent.parent is not None
        and parent.parent.type == "call_expression"
    )


def unwrap(node: Node | None) -> Node | None:
    while node is not None and node.type in (
        "await_expression",
        "parenthesized_expression",
        "as_expression",
    ):
        node = node.named_children[0] if node.named_children else None
    return node


class TsRewriter:
    """The edits and by-hand items of one TypeScript/JavaScript file."""

    def __init__(
        self, path: Path, data: bytes, schema: GraphQLSchema, pool: dict[str, str]
    ) -> None:
        self.path, self.data, self.schema, self.pool = path, data, schema, pool
        self.root = parse_ts(path, data).root_node
        self.edits = EditSet(data)
        self.manual: list[ManualItem] = []
        self.clients: set[str] = set()
        self.llms: set[str] = set()
        self.constants: dict[str, Node] = {}

    def by_hand(self, node: Node, pattern: str, action: str) -> None:
        self.manual.append(
            ManualItem(str(self.path), line_of(self.data, node.start_byte), pattern, action)
        )

    def src(self, node: Node) -> str:
        return self.edits.render(node.start_byte, node.end_byte)

    def run(self) -> tuple[str, list[ManualItem]]:
        if not self.imports_legacy():
            literals = ts_literals(self.path, self.data, self.root)
            self.manual += fix_literals(self.schema, literals, self.edits, self.pool)
            return self.edits.apply(), self.manual
        self.collect_names()
        for node in walk(self.root):
            if node.type == "member_expression":
                self.common_model(node)
        tops = [n for n in walk(self.root) if n.type in ("call_expression", "new_expression")]
        for node in sorted(tops, key=lambda n: n.end_byte - n.start_byte):
            if node.type == "new_expression":
                self.new_client(node)
            elif is_chain_top(node):
                self.call_chain(node)
        literals = ts_literals(self.path, self.data, self.root)
        self.manual += fix_literals(self.schema, literals, self.edits, self.pool)
        out = self.edits.apply()
        return prune_imports(self.path, self.data, out), sorted(self.manual, key=lambda m: m.line)

    # ---------------------------------------------------------------- imports and names

    def imports_legacy(self) -> bool:
        found = False
        for node in walk(self.root):
            source = None
            if node.type == "import_statement":
                source = node.child_by_field_name("source")
            elif (
                node.type == "call_expression"
                and text(node.child_by_field_name("function")) == "require"
            ):
                args = node.child_by_field_name("arguments")
                source = args.named_children[0] if args and args.named_children else None
            if source is None or source.type != "string":
                continue
            module = text(source)[1:-1]
            if module == LEGACY:
                self.edits.add(source.start_byte + 1, source.end_byte - 1, NEW)
                found = True
                self.check_import_names(node)
            elif module.startswith(LEGACY + "/"):
                self.by_hand(
                    node,
                    f"import from {module}",
                    f"import from `{NEW}` (its index has every export)",
                )
                found = True
        return found

    def check_import_names(self, node: Node) -> None:
        """List the imported names the new package does not export."""
        holder = node if node.type == "import_statement" else node.parent
        specs = (
            [
                s
                for s in walk(holder)
                if s.type
                in ("import_specifier", "shorthand_property_identifier_pattern", "pair_pattern")
            ]
            if holder
            else []
        )
        for spec in specs:
            name_node = spec.child_by_field_name("name") or spec.child_by_field_name("key") or spec
            name = text(name_node)
            if name not in KEPT_NAMES:
                self.by_hand(
                    spec, f"import {name}", f"`{NEW}` does not export `{name}`: replace its uses"
                )

    def collect_names(self) -> None:
        """Variables holding a legacy client or `client.llm()`, and constant strings."""
        for node in walk(self.root):
            if node.type == "variable_declarator":
                name, value = (
                    node.child_by_field_name("name"),
                    unwrap(node.child_by_field_name("value")),
                )
                if name is None or value is None or name.type != "identifier":
                    continue
                self.classify(text(name), value)
            elif node.type == "assignment_expression":
                left, right = (
                    node.child_by_field_name("left"),
                    unwrap(node.child_by_field_name("right")),
                )
                if left is not None and right is not None:
                    self.classify(text(left), right)
            elif node.type in (
                "required_parameter",
                "optional_parameter",
                "public_field_definition",
            ):
                annotation = node.child_by_field_name("type")
                name = node.child_by_field_name("pattern") or node.child_by_field_name("name")
                if annotation is not None and text(annotation).lstrip(": ") == "Client" and name:
                    self.clients.add(text(name))
                    if node.type == "public_field_definition":
                        self.clients.add(f"this.{text(name)}")

    def classify(self, name: str, value: Node) -> None:
        args = value.child_by_field_name("arguments") if value.type == "call_expression" else None
        if value.type in ("string", "template_string") or (
            args is not None and args.type == "template_string"
        ):
            self.constants[name] = value
        if (
            value.type == "new_expression"
            and text(value.child_by_field_name("constructor")) == "Client"
        ):
            self.clients.add(name)
        root, steps = chain(value)
        if text(root) == "Client" and steps and steps[0].name == "builder":
            self.clients.add(name)
        if steps and steps[-1].name == "llm" and len(steps) == 1:
            self.llms.add(name)

    def common_model(self, node: Node) -> None:
        obj, prop = node.child_by_field_name("object"), node.child_by_field_name("property")
        if text(obj) == "COMMON_MODELS" and text(prop) in COMMON_MODELS:
            self.edits.add(node.start_byte, node.end_byte, f'"{COMMON_MODELS[text(prop)]}"')

    # ---------------------------------------------------------------- calls

    def new_client(self, node: Node) -> None:
        if text(node.child_by_field_name("constructor")) != "Client":
            return
        args = node.child_by_field_name("arguments")
        first = args.named_children[0] if args and args.named_children else None
        if first is None:
            self.by_hand(
                node,
                "new Client()",
                "pass `baseUrl` (or set CB_BASE_URL): the legacy default was http://localhost:3000",
            )
            return
        if first.type != "object":
            self.by_hand(
                node,
                f"new Client({text(first)})",
                "the options are `{ baseUrl, apiKey, timeoutMs, headers }`:"
                " rename `timeout` to `timeoutMs`",
            )
            return
        for prop in first.named_children:
            key = prop.child_by_field_name("key") if prop.type == "pair" else prop
            if key is not None and text(key) == "timeout":
                if prop.type == "shorthand_property_identifier":
                    self.edits.add(prop.start_byte, prop.end_byte, "timeoutMs: timeout")
                else:
                    self.edits.add(key.start_byte, key.end_byte, "timeoutMs")
            if key is not None and text(key) == "baseUrl":
                self.check_base_url(
                    prop.child_by_field_name("value") if prop.type == "pair" else None
                )

    def check_base_url(self, value: Node | None) -> None:
        if (
            value is not None
            and value.type == "string"
            and text(value)[1:-1].rstrip("/").endswith(("/graphql", "/v1"))
        ):
            self.by_hand(
                value,
                f"baseUrl {text(value)}",
                "the new Client takes the server's root URL: drop the `/graphql` or `/v1` path",
            )

    def call_chain(self, node: Node) -> None:
        root, steps = chain(node)
        if root.type == "call_expression" and root.child_by_field_name("function") is not None:
            func = text(root.child_by_field_name("function"))
            if func == "createAgent":
                self.agent_builder(node, root, steps)
            elif func in CHAT_FACTORIES:
                self.chat_builder(steps)
            elif func in HELPERS_BY_HAND:
                self.by_hand(node, f"{func}(…)", HELPERS_BY_HAND[func])
            return
        if not steps:
            return
        first = steps[0]
        owner = text(root)
        if owner == "Client" and first.name == "builder":
            self.client_builder(node, steps)
        elif first.name == "agents" and not first.args:
            self.agents(node, root, steps)
        elif first.name == "analytics" and not first.args:
            self.analytics(node, root, steps)
        elif first.name == "llm" and not first.args and len(steps) > 1:
            self.llm_call(node, steps[1])
        elif owner in self.llms:
            self.llm_call(node, first)
        elif first.name in ("query", "mutation") and owner in self.clients:
            self.raw_graphql(node, root, first)
        elif first.name in NO_EQUIVALENT and (
            owner in self.clients or (first.name in ACCESSORS and not first.args)
        ):
            self.by_hand(node, f"{owner}.{first.name}(…)", NO_EQUIVALENT[first.name])

    def client_builder(self, node: Node, steps: list[Step]) -> None:
        names = {
            "baseUrl": "baseUrl",
            "apiKey": "apiKey",
            "timeout": "timeoutMs",
            "headers": "headers",
        }
        options, unknown = (
            [],
            [s.name for s in steps[1:-1] if s.name not in names or len(s.args) != 1],
        )
        if steps[-1].name != "build" or unknown or len(steps) < 2:
            self.by_hand(
                node,
                "Client.builder()…",
                "use `new Client({ baseUrl, apiKey, timeoutMs, headers })`"
                + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
            )
            return
        for step in steps[1:-1]:
            options.append(prop(names[step.name], self.src(step.args[0])))
            if step.name == "baseUrl":
                self.check_base_url(step.args[0])
        if not any(s.name == "baseUrl" for s in steps):
            self.by_hand(
                node,
                "Client.builder() without baseUrl",
                "the legacy builder defaulted to http://localhost:4000;"
                " the new Client needs `baseUrl` or CB_BASE_URL",
            )
        self.edits.add(node.start_byte, node.end_byte, f"new Client({{ {', '.join(options)} }})")

    def agent_builder(self, node: Node, root: Node, steps: list[Step]) -> None:
        if (
            not steps
            or steps[-1].name != "build"
            or any(s.name not in AGENT_SETTERS for s in steps[:-1])
        ):
            unknown = [s.name for s in steps if s.name not in AGENT_SETTERS | {"build"}]
            if unknown:
                self.by_hand(
                    node,
                    "createAgent(…)",
                    f"unknown builder calls {', '.join(unknown)}:"
                    " write the `client.agents.create({…})` body by hand",
                )
            return
        args = root.child_by_field_name("arguments")
        name_args = args.named_children if args else []
        fields: dict[str, str] = {
            "name": self.src(name_args[0]) if name_args else '""',
            "model": '"cb:smart-chat"',
        }
        params: list[str] = []
        tools: list[str] = []
        tags: list[str] = []
        keys = {
            "setName": "name", "setDescription": "description", "setLLMProvider": "provider_type",
            "setModel": "model", "setSystemPrompt": "system_prompt",
        }  # fmt: skip
        for step in steps[:-1]:
            arg = self.src(step.args[0]) if step.args else "undefined"
            if step.name in keys:
                fields[keys[step.name]] = arg
            elif step.name == "setTemperature":
                params.append(f"temperature: {arg}")
            elif step.name == "setMaxTokens":
                params.append(f"max_tokens: {arg}")
            elif step.name == "addTool":
                tools.append(arg)
            elif step.name in ("setType", "setMemory"):
                prefix = "type" if step.name == "setType" else "memory"
                value = step.args[0] if step.args else None
                if value is not None and value.type == "string":
                    tags.append(f'"{prefix}:{text(value)[1:-1]}"')
                else:
                    tags.append(f"`{prefix}:${{{arg}}}`")
        body = [f"{k}: {v}" for k, v in fields.items()]
        if params:
            body.append(f"parameters: {{ {', '.join(params)} }}")
        if tools:
            body.append(f"tools: [{', '.join(tools)}]")
        if tags:
            body.append(f"tags: [{', '.join(tags)}]")
        self.edits.add(node.start_byte, node.end_byte, f"{{ {', '.join(body)} }}")

    def chat_builder(self, steps: list[Step]) -> None:
        for step in steps:
            if step.name in ROUTING_SETTERS:
                obj = step.member.child_by_field_name("object")
                if obj is not None:
                    self.edits.add(obj.end_byte, step.call.end_byte, "")

    def agents(self, node: Node, root: Node, steps: list[Step]) -> None:
        owner, first = self.src(root), steps[0]
        if len(steps) < 2:
            self.by_hand(node, f"{text(node)}", f"`{owner}.agents` is a property now (no call)")
            return
        method = steps[1].name
        if method in ("create", "get", "list", "delete"):
            self.edits.add(first.call.start_byte, first.call.end_byte, f"{owner}.agents")
            return
        hints = {
            "chat": f"use `{owner}.agents.execute(id, {{ prompt, context: messages }})`"
            " and read `.response?.content` (not `.choices[0].message.content`)",
            "execute": f"use `{owner}.agents.execute(id, {{ prompt, context, parameters }})`"
            " (the body is the REST ExecuteRequest)",
            "update": f"use `{owner}.agents.update(id, patch)` with the REST field names"
            " (model, system_prompt, parameters)",
        }  # fmt: skip
        self.by_hand(
            node,
            f"{owner}.agents().{method}(…)",
            hints.get(method, f"no `{method}` on `{owner}.agents`"),
        )

    def analytics(self, node: Node, root: Node, steps: list[Step]) -> None:
        owner = self.src(root)
        owners = {"userId", "projectId"}
        budget = {"limit", "period", "warningThreshold"}
        spec = {
            "budgetStatus": ("get", owners, set()),
            "costAnalytics": ("get", owners | {"dateRange"}, {"startDate", "endDate"}),
            "setBudget": ("execute", owners | budget, budget),
        }
        if len(steps) < 3 or steps[1].name not in spec or steps[1].args:
            self.by_hand(
                node,
                f"{owner}.analytics()…",
                f"use `{owner}.graphql.budgetStatus/costAnalytics/setBudget(…)`,"
                f" or REST `{owner}.budgets` and `{owner}.analytics.usage()`",
            )
            return
        op, (end, setters, required) = steps[1].name, spec[steps[1].name]
        fields: list[tuple[str, str]] = []
        for step in steps[2:-1]:
            if step.name not in setters:
                break
            if step.name == "dateRange" and len(step.args) == 2:
                fields += [
                    ("startDate", self.src(step.args[0])),
                    ("endDate", self.src(step.args[1])),
                ]
            elif step.name != "dateRange" and len(step.args) == 1:
                fields.append((step.name, self.src(step.args[0])))
            else:
                break
        else:
            if steps[-1].name == end and required <= {k for k, _ in fields}:
                body = ", ".join(prop(k, v) for k, v in fields)
                self.edits.add(
                    node.start_byte,
                    node.end_byte,
                    f"{owner}.graphql.{op}({{ {body} }})" if body else f"{owner}.graphql.{op}()",
                )
                return
        self.by_hand(
            node,
            f"{owner}.analytics().{op}()…",
            f"use `{owner}.graphql.{op}({{ … }})`"
            f" (the legacy input's fields: {', '.join(sorted(setters | required))})",
        )

    def llm_call(self, node: Node, step: Step) -> None:
        if step.name in LLM_KEPT:
            return
        if step.name == "streamChatCompletion":
            action = (
                "callback streaming: use `for await (const chunk of client.llm().stream(request))`,"
                " or `client.agents.stream(id, { prompt })` for typed events"
            )
        else:
            action = (
                f"`{step.name}` has no equivalent in the new SDK (chat completions and models only)"
            )
        self.by_hand(node, f"llm.{step.name}(…)", action)

    def raw_graphql(self, node: Node, root: Node, first: Step) -> None:
        self.edits.add(
            first.member.start_byte, first.member.end_byte, f"{self.src(root)}.graphql.query"
        )
        query = first.args[0] if first.args else None
        if query is not None and query.type == "identifier" and text(query) in self.constants:
            query = self.constants[text(query)]
        if query is not None and query.type == "call_expression":
            query = query.child_by_field_name("arguments")
        literal: Literal | None = None
        if query is not None and query.type in ("string", "template_string"):
            literal = ts_literal(self.path, self.data, query)
        fields = root_fields(literal.text) if literal else []
        hint = rest_hint(fields, python=False)
        if hint:
            self.by_hand(
                node,
                f"raw GraphQL {', '.join(fields)} (now `client.graphql.query`, same result)",
                hint,
            )


def prune_imports(path: Path, before: bytes, after: str) -> str:
    """Drop names of the new package's import that the rewrite left unused."""
    data = after.encode()
    tree = parse_ts(path, data).root_node
    used_before = _identifier_counts(parse_ts(path, before).root_node)
    used_after = _identifier_counts(tree)
    edits = EditSet(data)
    for node in walk(tree):
        if node.type == "variable_declarator":
            _prune_require(node, data, used_before, used_after, edits)
        source = node.child_by_field_name("source") if node.type == "import_statement" else None
        if source is None or text(source)[1:-1] != NEW:
            continue
        specs = [s for s in walk(node) if s.type == "import_specifier"]
        keep = [
            s for s in specs if used_after.get(_local(s), 0) or not used_before.get(_local(s), 0)
        ]
        if len(keep) == len(specs):
            continue
        named = next(n for n in walk(node) if n.type == "named_imports")
        if keep:
            edits.add(
                named.start_byte, named.end_byte, "{ " + ", ".join(text(s) for s in keep) + " }"
            )
        elif len(node.named_children[0].named_children) == 1:  # only named imports: drop it
            end = node.end_byte + (1 if data[node.end_byte : node.end_byte + 1] == b"\n" else 0)
            edits.add(node.start_byte, end, "")
    return edits.apply()


def _prune_require(
    node: Node, data: bytes, before: dict[str, int], after: dict[str, int], edits: EditSet
) -> None:
    """`const { A, B } = require("@circuit-breaker/sdk")` without the names left unused."""
    pattern, value = node.child_by_field_name("name"), node.child_by_field_name("value")
    if pattern is None or value is None or pattern.type != "object_pattern":
        return
    args = value.child_by_field_name("arguments") if value.type == "call_expression" else None
    if args is None or [text(a)[1:-1] for a in args.named_children] != [NEW]:
        return
    names = [c for c in pattern.named_children if c.type == "shorthand_property_identifier_pattern"]
    keep = [
        c
        for c in pattern.named_children
        if c not in names or after.get(text(c), 0) or not before.get(text(c), 0)
    ]
    if keep and len(keep) < len(pattern.named_children):
        edits.add(
            pattern.start_byte, pattern.end_byte, "{ " + ", ".join(text(c) for c in keep) + " }"
        )


def _local(spec: Node) -> str:
    return text(spec.child_by_field_name("alias") or spec.child_by_field_name("name"))


def _identifier_counts(root: Node) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in walk(root):
        if node.type in ("identifier", "type_identifier", "shorthand_property_identifier"):
            inside_import = any(
                a.type in ("import_statement", "object_pattern") for a in _ancestors(node)
            )
            if not inside_import:
                counts[text(node)] = counts.get(text(node), 0) + 1
    return counts


def _ancestors(node: Node) -> list[Node]:
    out = []
    while node.parent is not None:
        node = node.parent
        out.append(node)
    return out
