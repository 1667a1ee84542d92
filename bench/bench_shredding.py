"""What sealing a data subject's payload costs, in one process on real SQLite files: the
events of one execution (Started, ModelResolved, a tool turn, Completed) saved and then
folded into the history read model, without a payload key (the baseline, same run) and
under a subject's key; then erasing one subject (destroying its keys) among many.

    python bench/bench_shredding.py [--executions N] [--subjects S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.event_store import EventStore  # noqa: E402
from actors.payload_keys import PayloadKeys  # noqa: E402
from actors.settings import Settings  # noqa: E402
from domain import shredding  # noqa: E402
from domain.execution import Execution  # noqa: E402
from domain.results import Outcome  # noqa: E402
from projections import decoded, history, runner  # noqa: E402
from projections.db import ReadModelDB  # noqa: E402

PROMPT = "Summarise the customer's last three orders and suggest a follow-up. " * 8
ANSWER = {"content": "Here is the summary you asked for. " * 20, "finish_reason": "stop"}
USAGE = {"prompt_tokens": 180, "completion_tokens": 140, "total_tokens": 320}
ATTEMPT = {"model": "gpt-4o-mini", "provider": "openai", "latency_ms": 420.0}
OUTCOME = {"answer": ANSWER, "usage": USAGE, "cost_usd": 0.0004, "model_resolved": "gpt-4o-mini",
           "attempts": [ATTEMPT]}  # fmt: skip


def _execution(tenant: str, ref: str | None, kid: str | None) -> Execution:
    execution = Execution(
        id=uuid.uuid4(), tenant_id=tenant, agent_id=str(uuid.uuid4()), agent_version=1,
        request={"prompt": PROMPT, "metadata": {"resource_id": "r-1"}},
        model_requested="cb:smart-chat", stream=False, subject_ref=ref, payload_kid=kid,
    )  # fmt: skip
    execution.resolve_model("gpt-4o-mini", "openai", {"strategy": "balanced"})
    execution.call_tool("c1", "lookup_orders", {"customer": "c-42", "limit": 3}, 1)
    execution.record_tool_result("c1", "lookup_orders", {"orders": [1, 2, 3]}, None, 12.0)
    execution.complete(Outcome.model_validate(OUTCOME))
    return execution


def _phase(tmp: Path, executions: int, subjects: int, sealed: bool) -> dict[str, float]:
    settings = Settings(data_dir=str(tmp))
    app = EventStore(env=settings.store_env())
    keys = PayloadKeys(settings)
    app.use_payload_keys(keys)
    db = ReadModelDB(settings.read_model_url())
    history.seal_payloads_with(keys)
    runner.create_tables(db)
    tenant = str(uuid.uuid4())
    refs = [shredding.subject_ref(tenant, f"user-{i}") for i in range(subjects)]
    hour = shredding.bucket(time.time())
    built = []
    for i in range(executions):
        ref = refs[i % subjects] if sealed else None
        kid = keys.kid_for(tenant, ref, hour) if ref else None
        built.append(_execution(tenant, ref, kid))
    try:
        cpu = time.process_time()
        for execution in built:  # one save per execution, as the runner's group commit
            app.save(execution)  # at low load does
        save_ms = (time.process_time() - cpu) * 1000 / executions
        decoded.forget()
        cpu = time.process_time()
        runner.catch_up_fully(app, db, runner.READ_MODELS)
        fold_ms = (time.process_time() - cpu) * 1000 / executions
        cpu = time.process_time()
        for execution in built[:200]:
            history.get_execution(db, tenant, str(execution.id))
        read_ms = (time.process_time() - cpu) * 1000 / min(200, executions)
        erase_ms = 0.0
        if sealed:
            started = time.perf_counter()
            keys.destroy(tenant, refs[0])
            erase_ms = (time.perf_counter() - started) * 1000
        return {"save": save_ms, "fold": fold_ms, "read": read_ms, "erase": erase_ms}
    finally:
        history.seal_payloads_with(None)
        db.close()
        app.close()
        keys.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=2000)
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    figures: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(args.rounds):  # alternating, so drift hits both alike
        for sealed in (False, True):
            with tempfile.TemporaryDirectory(prefix="cb-shred-") as tmp:
                figures[sealed].append(_phase(Path(tmp), args.executions, args.subjects, sealed))
    print(f"{args.executions} executions (5 events, one save each), {args.subjects} subjects, "
          f"median of {args.rounds} rounds; CPU ms per execution")  # fmt: skip
    print(f"{'':24}{'save':>8}{'fold':>8}{'read':>8}")
    for sealed, label in ((False, "no payload key (base)"), (True, "subject's key")):
        rows = figures[sealed]
        med = {k: statistics.median(r[k] for r in rows) for k in ("save", "fold", "read")}
        print(f"{label:24}{med['save']:8.3f}{med['fold']:8.3f}{med['read']:8.3f}")
    erase = statistics.median(r["erase"] for r in figures[True])
    print(f"erasing one subject of {args.subjects} (keys destroyed, secure delete): "
          f"{erase:.1f} ms wall")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
