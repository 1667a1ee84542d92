"""`domain.fast_json`: orjson's speed, and where it declines, the standard library's answer."""

from __future__ import annotations

import json
import math

import pytest

from domain import fast_json


def test_it_writes_compact_utf8_json_that_reads_back_the_same() -> None:
    value = {"text": "héllo \"q\" \\ 🙂", "n": 2**62, "f": 0.1, "ok": True, "none": None,
             "list": [1, "a", {"b": []}]}  # fmt: skip
    data = fast_json.dumps(value)
    assert data == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert fast_json.loads(data) == value


def test_what_orjson_declines_the_standard_library_takes() -> None:
    big = {"n": 10**30, "m": -(2**64)}
    assert fast_json.loads(fast_json.dumps(big)) == big  # orjson would read floats
    assert fast_json.dumps({1: "a", None: "b"}) == b'{"1":"a","null":"b"}'  # as json does
    assert math.isnan(fast_json.loads(b'{"x": NaN}')["x"])  # json's own token read back
    assert fast_json.dumps({"x": float("nan")}) == b'{"x":null}'


def test_what_is_not_json_is_refused_as_the_standard_library_refuses_it() -> None:
    with pytest.raises(TypeError):
        fast_json.dumps({"x": object()})
    with pytest.raises(ValueError):
        fast_json.loads(b'{"x": ')


def test_a_long_digit_run_inside_a_string_keeps_orjsons_path(monkeypatch) -> None:
    # a provider's ids may hold long digit runs; only a run where an integer can start
    # sends the whole document to the standard library
    read_slowly: list[bytes] = []
    monkeypatch.setattr(fast_json.json, "loads", lambda data: read_slowly.append(data))
    reply = b'{"id":"chatcmpl-0000000000000000000000","f":1.00000000000000000000001}'
    assert fast_json.loads(reply) == {"id": "chatcmpl-0000000000000000000000", "f": 1.0}
    assert read_slowly == []
    for integer in (b'{"n":12345678901234567890}', b"[-12345678901234567890]",
                    b"12345678901234567890", b'{"a":"k0000000000000000000000","b":\n'
                    b"99999999999999999999}"):  # fmt: skip
        fast_json.loads(integer)
    assert len(read_slowly) == 4


def test_every_integer_of_any_length_reads_exactly() -> None:
    for digits in range(1, 40):
        n = int("9" * digits)
        for text in (f'{{"id":"x{n}","n":{n}}}', f"[1,-{n}]", f'{{"a": {n}}}', f"{n}"):
            assert fast_json.loads(text.encode()) == json.loads(text)
