"""Rewriting raw legacy GraphQL calls of Python sources (`httpx.post` / `requests.post` to
`…/graphql` with `json={"query": …, "variables": …}`) into the new Python SDK's
`Client(…).graphql.query(query, variables)`, on `ast` node positions. The rewrite is made
only where every use of the response is one it can carry over: `.raise_for_status()`
(dropped: `query` raises the typed error) and `.json()["data"]` (the data itself)."""

from __future__ import annotations

import ast
from pathlib import Path

from graphql import GraphQLSchema

from migration.edits import EditSet, ManualItem
from migration.graphql_fixes import fix_literals, root_fields
from migration.rest_equivalents import rest_hint
from migration.source_scan import python_literals, python_tree

HTTP_MODULES = {"httpx", "requests"}
IMPORT = "from circuit_breaker import Client\n"
USE_QUERY = "`Client(base_url, api_key=…).graphql.query(query, variables)` of `circuit_breaker`"


class PyRewriter:
    """The edits and by-hand items of one Python module."""

    def __init__(
        self, path: Path, source: str, schema: GraphQLSchema, pool: dict[str, str]
    ) -> None:
        self.path, self.source, self.schema, self.pool = path, source, schema, pool
        self.data = source.encode()
        self.tree = python_tree(path, source)
        self.offsets = [0]
        for line in self.data.splitlines(keepends=True):
            self.offsets.append(self.offsets[-1] + len(line))
        self.edits = EditSet(self.data)
        self.manual: list[ManualItem] = []
        self.constants = {
            t.id: node.value.value
            for node in self.tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for t in node.targets if isinstance(t, ast.Name)
        }  # fmt: skip
        self.parents: dict[int, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[id(child)] = parent

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offsets[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self.offsets[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return start, end

    def seg(self, node: ast.AST) -> str:
        return self.edits.render(*self.span(node))

    def by_hand(self, node: ast.AST, pattern: str, action: str) -> None:
        self.manual.append(ManualItem(str(self.path), node.lineno, pattern, action))  # type: ignore[attr-defined]

    def run(self) -> tuple[str, list[ManualItem]]:
        literals = python_literals(self.path, self.source)
        self.manual += fix_literals(self.schema, literals, self.edits, self.pool)
        rewrote = False
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and self.is_graphql_post(node):
                rewrote |= self.rewrite_post(node)
            elif isinstance(node, ast.Call) and self.is_other_graphql_post(node):
                self.by_hand(
                    node,
                    f"{ast.unparse(node.func)}(…/graphql)",
                    f"use {USE_QUERY}",
                )
        if rewrote and not self.imports_client():
            self.add_import()
        out = self.edits.apply()
        if rewrote:
            out = drop_unused_imports(out)
        return out, sorted(self.manual, key=lambda m: m.line)

    # ---------------------------------------------------------------- recognising

    def is_graphql_post(self, call: ast.Call) -> bool:
        func = call.func
        return (
            isinstance(func, ast.Attribute) and func.attr == "post"
            and isinstance(func.value, ast.Name) and func.value.id in HTTP_MODULES
            and bool(call.args) and self.graphql_url(call.args[0])
        )  # fmt: skip

    def is_other_graphql_post(self, call: ast.Call) -> bool:
        func = call.func
        return (
            isinstance(func, ast.Attribute) and func.attr in ("post", "request")
            and not (isinstance(func.value, ast.Name) and func.value.id in HTTP_MODULES)
            and any(self.graphql_url(a) for a in call.args[:2])
            and any(k.arg == "json" for k in call.keywords)
        )  # fmt: skip

    @staticmethod
    def graphql_url(node: ast.expr) -> bool:
        last = node
        if isinstance(node, ast.JoinedStr) and node.values:
            last = node.values[-1]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            last = node.right
        return isinstance(last, ast.Constant) and str(last.value).rstrip("/").endswith("/graphql")

    def base_url(self, node: ast.expr) -> str | None:
        """The expression of the server's root URL, from the `…/graphql` one."""
        if isinstance(node, ast.BinOp):
            suffix = str(node.right.value).rstrip("/")  # type: ignore[attr-defined]
            return self.seg(node.left) if suffix == "/graphql" else None
        if isinstance(node, ast.Constant):
            return repr(str(node.value).rstrip("/").removesuffix("/graphql"))
        if isinstance(node, ast.JoinedStr):
            values = list(node.values)
            tail = str(values[-1].value).rstrip("/").removesuffix("/graphql")  # type: ignore[attr-defined]
            head = values[:-1]
            if not tail and len(head) == 1 and isinstance(head[0], ast.FormattedValue):
                if head[0].conversion == -1 and head[0].format_spec is None:
                    return self.seg(head[0].value)
            text = self.seg(node)
            quote = text[-1]
            cut = text.rstrip(quote).rstrip("/")
            if cut.endswith("/graphql"):
                return cut.removesuffix("/graphql") + quote
        return None

    def api_key(self, headers: ast.expr) -> tuple[bool, str | None]:
        """(understood, the key's expression) from `headers={"Authorization": "Bearer …"}`."""
        if not isinstance(headers, ast.Dict) or len(headers.keys) != 1:
            return False, None
        key, value = headers.keys[0], headers.values[0]
        if not (isinstance(key, ast.Constant) and str(key.value).lower() == "authorization"):
            return False, None
        if isinstance(value, ast.JoinedStr) and len(value.values) == 2:
            prefix, token = value.values
            if (
                isinstance(prefix, ast.Constant)
                and prefix.value == "Bearer "
                and isinstance(token, ast.FormattedValue)
            ):
                return True, self.seg(token.value)
        if (
            isinstance(value, ast.BinOp)
            and isinstance(value.left, ast.Constant)
            and value.left.value == "Bearer "
        ):
            return True, self.seg(value.right)
        return False, None

    # ---------------------------------------------------------------- rewriting

    def rewrite_post(self, call: ast.Call) -> bool:
        pattern = f"{ast.unparse(call.func)}(…/graphql, json={{query, …}})"
        kwargs = {k.arg: k.value for k in call.keywords}
        body = kwargs.get("json")
        if not isinstance(body, ast.Dict) or None in body.keys:
            self.by_hand(
                call,
                pattern,
                f'the body is not a literal `{{"query": …, "variables": …}}`: use {USE_QUERY}',
            )
            return False
        parts = {
            k.value: v
            for k, v in zip(body.keys, body.values, strict=True)
            if isinstance(k, ast.Constant)
        }
        fields = self.fields_of(parts.get("query"))
        hint = rest_hint(fields, python=True)
        if hint:
            self.by_hand(call, f"raw GraphQL {', '.join(fields)}", hint)
        base = self.base_url(call.args[0])
        ok, key = self.api_key(kwargs["headers"]) if "headers" in kwargs else (True, None)
        extra = set(kwargs) - {"json", "headers", "timeout"}
        unknown = set(parts) - {"query", "variables"}
        if (
            "query" not in parts
            or base is None
            or not ok
            or extra
            or unknown
            or len(call.args) != 1
        ):
            why = (
                "its URL, headers (only `Authorization: Bearer …`), or arguments are not ones"
                " the rewrite carries over"
            )
            self.by_hand(
                call,
                pattern,
                f"{why}: use `Client(base_url, api_key=…).graphql.query(query, variables)`",
            )
            return False
        client = f"Client(base_url={base}"
        client += f", api_key={key}" if key else ""
        client += f", timeout={self.seg(kwargs['timeout'])})" if "timeout" in kwargs else ")"
        args = self.seg(parts["query"]) + (
            f", {self.seg(parts['variables'])}" if "variables" in parts else ""
        )
        replacement = f"{client}.graphql.query({args})"
        return self.place(call, replacement, pattern)

    def fields_of(self, query: ast.expr | None) -> list[str]:
        if isinstance(query, ast.Constant) and isinstance(query.value, str):
            return root_fields(query.value)
        if isinstance(query, ast.Name) and query.id in self.constants:
            return root_fields(self.constants[query.id])
        return []

    def place(self, call: ast.Call, replacement: str, pattern: str) -> bool:
        """Put the query call where the response was used, if each use carries over."""
        data_use = self.data_subscript(call)
        if data_use is not None:
            self.edits.add(*self.span(data_use), replacement)
            return True
        parent = self.parents.get(id(call))
        if not (
            isinstance(parent, ast.Assign)
            and len(parent.targets) == 1
            and isinstance(parent.targets[0], ast.Name)
        ):
            self.by_hand(
                call,
                pattern,
                "the response is used in a way the rewrite does not carry over:"
                f" use {USE_QUERY} (it returns `data`)",
            )
            return False
        name = parent.targets[0].id
        scope = self.scope_of(parent)
        uses = [
            n
            for n in ast.walk(scope)
            if isinstance(n, ast.Name) and n.id == name and n is not parent.targets[0]
        ]
        drops, datas = [], []
        for use in uses:
            up = self.parents.get(id(use))
            call_up = self.parents.get(id(up)) if up is not None else None
            stmt = self.parents.get(id(call_up)) if call_up is not None else None
            if (
                isinstance(up, ast.Attribute)
                and up.attr == "raise_for_status"
                and isinstance(stmt, ast.Expr)
            ):
                drops.append(stmt)
            elif (
                isinstance(up, ast.Attribute)
                and up.attr == "json"
                and (sub := self.data_subscript_of_json(call_up))
            ):
                datas.append(sub)
            else:
                self.by_hand(
                    use,
                    f"`{name}` (the response of {pattern})",
                    'only `.raise_for_status()` and `.json()["data"]` carry over:'
                    f" assign `{name} =` {USE_QUERY} (the data; errors raise) and adapt",
                )
                return False
        self.edits.add(*self.span(call), replacement)
        for stmt in drops:
            start, end = self.span(stmt)
            line_start = self.offsets[stmt.lineno - 1]
            if self.data[line_start:start].strip() == b"" and self.data[end : end + 1] == b"\n":
                start, end = line_start, end + 1
            self.edits.add(start, end, "")
        for sub in datas:
            self.edits.add(*self.span(sub), name)
        return True

    def data_subscript(self, call: ast.Call) -> ast.Subscript | None:
        """`call.json()["data"]` around `call`, if that is how it is used."""
        attr = self.parents.get(id(call))
        if isinstance(attr, ast.Attribute) and attr.attr == "json":
            return self.data_subscript_of_json(self.parents.get(id(attr)))
        return None

    def data_subscript_of_json(self, json_call: ast.AST | None) -> ast.Subscript | None:
        if not isinstance(json_call, ast.Call) or json_call.args or json_call.keywords:
            return None
        sub = self.parents.get(id(json_call))
        if (
            isinstance(sub, ast.Subscript)
            and isinstance(sub.slice, ast.Constant)
            and sub.slice.value == "data"
        ):
            return sub
        return None

    def scope_of(self, node: ast.AST) -> ast.AST:
        current = self.parents.get(id(node))
        while current is not None and not isinstance(
            current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module
        ):
            current = self.parents.get(id(current))
        return current or self.tree

    def imports_client(self) -> bool:
        return any(
            isinstance(n, ast.ImportFrom)
            and n.module == "circuit_breaker"
            and any(a.name == "Client" for a in n.names)
            for n in self.tree.body
        )  # fmt: skip

    def add_import(self) -> None:
        imports = [n for n in self.tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        if imports:
            at = self.offsets[imports[-1].end_lineno]  # type: ignore[index]
        else:
            body = self.tree.body
            doc = body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            at = self.offsets[body[0].end_lineno] if doc else 0  # type: ignore[index,union-attr]
        self.edits.add(at, at, IMPORT)


def drop_unused_imports(source: str) -> str:
    """Remove `import httpx` / `import requests` statements the rewrite left unused."""
    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    lines = source.splitlines(keepends=True)
    for node in reversed(tree.body):
        if isinstance(node, ast.Import) and len(node.names) == 1:
            alias = node.names[0]
            if alias.name in HTTP_MODULES and (alias.asname or alias.name) not in used:
                del lines[node.lineno - 1 : node.end_lineno]
    return "".join(lines)
