"""The event store's mapper, sealing an execution's payload under its payload key.

An execution whose Started event names a `payload_kid` has the payload of each of its
events (`domain.shredding`) stored sealed under that key, beside the clear rest:
`_kid` and `_sealed` in the stored state. Reading opens it again, or, once the key is
destroyed, gives the event with its `ERASED` marks, never an error. Read events carry
`payload_kid`, so read models seal their copies under the same key.

The events every execution writes (`FAST_KINDS`) are encoded by `orjson`: the same JSON the
library's transcoder writes, its typed values (the timestamp) through the same transcodings,
in a fifth of the time. Their state is plain JSON from requests, providers and pydantic
dumps, so no `UUID` (which `orjson` would write as a bare string) is in it; a state `orjson`
declines (an integer beyond 64 bits, a key that is not a string) takes the library's path.
They are read by `orjson` too, unless they could read otherwise there (`_fast_event`).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import get_topic, resolve_topic

from actors.event_transcoder import DATA_KEY, MARKER, TYPE_KEY, EventTranscoder
from actors.payload_keys import PayloadKeys
from domain import fast_json, shredding
from domain.execution import Execution

KEEP = 100_000  # executions whose key this process remembers (far more than ever run at once)
FAST_KINDS = frozenset(
    {"Execution.Started", "Execution.ModelResolved", "Execution.Progressed",
     "Execution.Completed", "Execution.Failed", "Execution.Cancelled"}
)  # fmt: skip
FAST_TOPICS = frozenset(f"{Execution.__module__}:{kind}" for kind in FAST_KINDS)
# typed values (datetimes, subclasses of str and int, dataclasses) go to the transcodings
_FAST_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)  # fmt: skip


class ShreddingMapper(Mapper[UUID]):
    """`keys` is set by the process that opens the store; without it nothing is sealed
    and sealed payloads read as erased."""

    keys: PayloadKeys | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kids: OrderedDict[UUID, str] = OrderedDict()

    def _remember(self, originator_id: UUID, kid: str) -> None:
        self._kids[originator_id] = kid
        if len(self._kids) > KEEP:
            self._kids.popitem(last=False)

    def seals(self, events: list[Any]) -> bool:
        """Whether mapping `events` seals a payload (and so may read its key from the
        database)."""
        if self.keys is None:
            return False
        return any(
            type(e).__qualname__ in shredding.SEALED_KINDS
            and (getattr(e, "payload_kid", None) is not None or e.originator_id in self._kids)
            for e in events
        )

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        kind = type(domain_event).__qualname__
        if kind not in shredding.SEALED_KINDS or self.keys is None:
            return self._stored(kind, domain_event)
        if kind == "Execution.Started":
            kid = getattr(domain_event, "payload_kid", None)
            if kid is not None:
                self._remember(domain_event.originator_id, kid)
        else:
            kid = self._kids.get(domain_event.originator_id)
        if kid is None:
            return self._stored(kind, domain_event)
        state = dict(vars(domain_event))
        payload = shredding.split(kind, state)
        state["_kid"] = kid
        state["_sealed"] = self.keys.seal(kid, payload) or ""  # "": erased while it ran
        stand_in = object.__new__(type(domain_event))
        object.__setattr__(stand_in, "__dict__", state)
        return self._stored(kind, stand_in)

    def _stored(self, kind: str, domain_event: Any) -> StoredEvent:
        """The library's mapping, with `FAST_KINDS` encoded by `orjson` (see the module)."""
        transcoder = self.transcoder
        fast = isinstance(transcoder, EventTranscoder) and kind in FAST_KINDS
        if not fast or self.compressor or self.cipher:
            return super().to_stored_event(domain_event)
        assert isinstance(transcoder, EventTranscoder)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        try:
            encoded = transcoder.encoded(state, partial(_orjson, transcoder))
        except orjson.JSONEncodeError:
            encoded = transcoder.encode(state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=encoded,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = None
        if stored_event.topic in FAST_TOPICS and not self.compressor and not self.cipher:
            event = self._fast_event(stored_event)
        if event is None:
            event = super().to_domain_event(stored_event)
        state = vars(event)
        kid = state.pop("_kid", None)
        if kid is None:
            return event
        token = state.pop("_sealed", "")
        kind = type(event).__qualname__
        payload = self.keys.open(kid, token) if self.keys is not None else None
        if payload is None:
            shredding.erase(kind, state)
        else:
            shredding.merge(kind, state, payload)
        state["payload_kid"] = kid
        self._remember(event.originator_id, kid)
        return event

    def _fast_event(self, stored_event: StoredEvent) -> Any:
        """The library's reading of a `FAST_KINDS` event, its JSON read by `orjson`; None
        where that could read otherwise: a typed value besides the timestamp (a `_type_`
        key), an integer that may pass 64 bits, what `orjson` refuses (`NaN`)."""
        data = stored_event.state
        if not isinstance(data, bytes) or data.count(MARKER) != 1:
            return None
        if fast_json.may_hold_long_integer(data):
            return None
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        stamp = state.get("timestamp") if isinstance(state, dict) else None
        if not isinstance(stamp, dict) or stamp.keys() != {TYPE_KEY, DATA_KEY}:
            return None
        transcoder = self.transcoder
        assert isinstance(transcoder, EventTranscoder)
        state["timestamp"] = transcoder._decode_obj(stamp)
        # from here as the library's `Mapper.to_domain_event` goes on
        cls = resolve_topic(stored_event.topic)
        convert = find_id_convertor(cls, type(stored_event.originator_id))
        state["originator_id"] = convert(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


def _orjson(transcoder: EventTranscoder, state: dict[str, Any]) -> bytes:
    return orjson.dumps(state, default=transcoder._encode_obj, option=_FAST_OPTIONS)
