"""The PED's §13 test scenarios as data (`scenarios/*.json`), for `cb scenarios run`.

A scenario either gives one reference agent (by name) its PED input, sent as the prompt in
JSON, or runs a collaboration whose steps name reference agents (`"agent": NAME`, resolved
to the tenant's agent ids) on its inputs. `report` turns what came back into the lines the
command prints: the answer, tool calls, usage and cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    input: dict[str, Any]  # as the PED gives it
    agent: str | None = None  # a reference agent's name, for a one-agent scenario
    collaboration: dict[str, Any] | None = None  # steps name agents by `agent`
    inputs: dict[str, Any] = field(default_factory=dict)  # the collaboration's

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Scenario:
        if (doc.get("agent") is None) == (doc.get("collaboration") is None):
            raise ValueError(f"scenario {doc.get('name')!r}: give either agent or collaboration")
        return cls(
            name=doc["name"],
            description=doc.get("description", ""),
            input=doc["input"],
            agent=doc.get("agent"),
            collaboration=doc.get("collaboration"),
            inputs=doc.get("inputs", {}),
        )

    def agents(self) -> list[str]:
        """The reference agents it needs, by name."""
        if self.agent is not None:
            return [self.agent]
        return [s["agent"] for s in (self.collaboration or {})["steps"] if "agent" in s]

    def execute_body(self) -> dict[str, Any]:
        """`POST /api/v1/agents/{id}/execute` for a one-agent scenario."""
        prompt = json.dumps(self.input, indent=2, ensure_ascii=False)
        return {"prompt": prompt, "metadata": {"scenario": self.name}}

    def run_body(self, agent_ids: dict[str, str]) -> dict[str, Any]:
        """`POST /api/v1/collaborations/run` for a collaboration scenario, each step's
        `agent` name replaced by that agent's id."""
        steps = []
        for step in (self.collaboration or {})["steps"]:
            resolved = {k: v for k, v in step.items() if k != "agent"}
            if "agent" in step:
                if step["agent"] not in agent_ids:
                    raise KeyError(step["agent"])
                resolved["agent_id"] = agent_ids[step["agent"]]
            steps.append(resolved)
        return {"definition": {**(self.collaboration or {}), "steps": steps}, "inputs": self.inputs}


def report(scenario: Scenario, result: dict[str, Any]) -> list[str]:
    """What the command prints for one scenario's result (an execution's, or a run's)."""
    lines = [f"== {scenario.name}: {scenario.description}"]
    if "run_id" in result:
        lines.append(f"run {result['run_id']}: {result['status']}")
        for step in result["steps"]:
            lines.append(
                f"-- step {step['id']} ({step['status']}, execution {step['execution_id']})"
            )
            lines.append(_indented(step.get("output") or (step.get("error") or {}).get("message")))
        lines.append("-- answer")
        lines.append(_indented(result.get("output")))
    else:
        lines.append(f"execution {result.get('execution_id')}: {result.get('status')}")
        response = result.get("response") or {}
        for call in response.get("tool_results") or []:
            arguments = json.dumps(call.get("arguments"), ensure_ascii=False)
            lines.append(f"-- tool {call.get('name')}({arguments})")
            lines.append(_indented(json.dumps(call.get("result"), ensure_ascii=False)))
        lines.append("-- answer")
        lines.append(
            _indented(response.get("content") or (result.get("error") or {}).get("message"))
        )
    usage = result.get("usage") or {}
    lines.append(
        f"usage: {usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)}"
        f" completion = {usage.get('total_tokens', 0)} tokens; cost ${usage.get('cost_usd', 0):.6f}"
    )
    return lines


def _indented(text: str | None) -> str:
    return "\n".join(f"   {line}" for line in (text or "(none)").splitlines()) or "   (none)"
