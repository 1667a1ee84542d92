"""JSON to and from bytes by `orjson` (a fifth of the standard library's time), with the
standard library taking over what `orjson` declines or reads otherwise: integers beyond 64
bits (which `orjson` reads as floats), and the `NaN` and `Infinity` tokens."""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # int, float, bool and None keys as text, as `json` does
# an integer that may be beyond 64 bits (2**63 has 19 digits) is a run of 19 digits: with
# every digit made "0" it is found by a substring search (a fifth of a regex search's time)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def dumps(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON; a float that is not a number is written `null`."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:  # the standard library writes it, or raises its TypeError
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """The JSON value of `data` (ValueError if it is none)."""
    if _LONG_RUN in data.translate(_DIGITS_AS_ZERO):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
