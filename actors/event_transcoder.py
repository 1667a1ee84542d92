"""The store's JSON transcoder: the library's, with a plain object that looks like one of its
typed values told apart from them.

`eventsourcing`'s JSON transcoder writes a typed value (a datetime, a UUID) as the object
`{"_type_": name, "_data_": data}`, and reads every object of exactly those two keys back as
one. An event's state holds what clients and servers send (a request's metadata and context,
a tool's arguments and result), so such an object could come from outside: it was read back
as a typed value (a string turned into a UUID or a datetime), or, under a name no
transcoding has, made its event unreadable, which stopped every projection at that event.

Here a plain object of those two keys is written as the typed value `cb_object`, its items as
pairs, which no reading takes for anything else, and it is read back as the object it was. An
event stored before, holding a name no transcoding has, reads with that object as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

TYPE_KEY, DATA_KEY = "_type_", "_data_"
MARKER = b'"_type_"'  # how each typed value's key is written (a string's quote is escaped)


class Lookalike:
    """A plain object of the two keys a typed value has, on its way to the store."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items


class LookalikeAsPairs(Transcoding):
    type = Lookalike
    name = "cb_object"

    def encode(self, obj: Lookalike) -> list[list[Any]]:
        return [[key, value] for key, value in obj.items]

    def decode(self, data: list[list[Any]]) -> dict[str, Any]:
        return {key: value for key, value in data}


class EventTranscoder(JSONTranscoder):
    """The library's JSON transcoder, telling a client's lookalike object from a typed value
    (see the module). `encoded` serves the store mapper's own encoder too."""

    def __init__(self) -> None:
        super().__init__()
        self._typed = threading.local()  # typed values written by this thread's encoding
        self.register(LookalikeAsPairs())

    def _encode_obj(self, o: Any) -> dict[str, Any]:
        self._typed.count = getattr(self._typed, "count", 0) + 1
        return super()._encode_obj(o)

    def encode(self, obj: Any) -> bytes:
        return self.encoded(obj, super().encode)

    def encoded(self, obj: Any, encode: Callable[[Any], bytes]) -> bytes:
        """`encode(obj)`; written again over `escaped(obj)` when it holds more typed-value
        keys than typed values were written (an object of `obj`'s own looks like one)."""
        self._typed.count = 0
        data = encode(obj)
        if data.count(MARKER) > self._typed.count:
            data = encode(escaped(obj))
        return data

    def _decode_obj(self, d: dict[str, Any]) -> Any:
        if len(d) == 2 and TYPE_KEY in d and DATA_KEY in d:
            name = d[TYPE_KEY]
            transcoding = self.names.get(name) if isinstance(name, str) else None
            if transcoding is not None:
                return transcoding.decode(d[DATA_KEY])
        return d  # a plain object (or a lookalike stored before, under no known name)


def escaped(value: Any) -> Any:
    """`value` with each object of exactly the typed-value keys made a `Lookalike`."""
    if isinstance(value, dict):
        items = [(key, escaped(item)) for key, item in value.items()]
        if len(value) == 2 and TYPE_KEY in value and DATA_KEY in value:
            return Lookalike(items)
        return dict(items)
    if isinstance(value, list | tuple):
        return [escaped(item) for item in value]
    return value
