"""Guardrails (`domain/guardrails.py`) and the personal-data detectors (`domain/pii.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from domain import pii
from domain.errors import (
    GuardrailBlocked,
    GuardrailOutputBlocked,
    InvalidRequest,
    category_of,
)
from domain.guardrails import (
    Decision,
    Guardrails,
    JsonSchemaCheck,
    KeywordsCheck,
    MaxLengthCheck,
    PiiCheck,
    RegexCheck,
    StreamGuard,
    blocked_error,
    repair_prompt,
    screen_input,
    screen_output,
)


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.value) for s in pii.detect(text)]


# --- detectors ----------------------------------------------------------------------------


def test_a_card_number_is_found_only_when_it_passes_luhn() -> None:
    assert kinds("card 4111 1111 1111 1111 ok") == [("card", "4111 1111 1111 1111")]
    assert kinds("card 4111 1111 1111 1112 ok") == []
    assert kinds("pay with 4111-1111-1111-1111.") == [("card", "4111-1111-1111-1111")]
    assert kinds("amex 378282246310005") == [("card", "378282246310005")]
    assert kinds("at 1700000000000 ms") == []  # a timestamp, not a card's range
    assert pii.luhn_valid("79927398713") and not pii.luhn_valid("79927398710")


def test_an_iban_is_found_with_a_valid_checksum_and_length() -> None:
    assert kinds("to GB82 WEST 1234 5698 7654 32 please") == [
        ("iban", "GB82 WEST 1234 5698 7654 32")
    ]
    assert kinds("DE89 3704 0044 0532 0130 00") == [("iban", "DE89 3704 0044 0532 0130 00")]
    assert kinds("DE89370400440532013000.") == [("iban", "DE89370400440532013000")]
    assert kinds("GB82 WEST 1234 5698 7654 33") == []  # bad checksum
    assert kinds("GB82 WEST 1234 5698 7654 32 AND MORE") == [
        ("iban", "GB82 WEST 1234 5698 7654 32")
    ]
    assert not pii.iban_valid("DE89 3704 0044 0532 0130")  # too short for Germany


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("123-45-6789", True),
        ("000-45-6789", False),
        ("666-45-6789", False),
        ("901-45-6789", False),
        ("123-00-6789", False),
        ("123-45-0000", False),
    ],
)
def test_a_us_ssn_outside_the_never_issued_ranges(text: str, found: bool) -> None:
    assert kinds(f"ssn {text} on file") == ([("ssn_us", text)] if found else [])


def test_spanish_dni_and_nie_need_their_control_letter() -> None:
    assert kinds("DNI 12345678Z") == [("dni_es", "12345678Z")]
    assert kinds("DNI 12345678A") == []
    assert kinds("NIE X1234567L") == [("nie_es", "X1234567L")]
    assert kinds("NIE X1234567A") == []


def test_uk_nino_french_nir_and_german_tax_id() -> None:
    assert kinds("NI AB 12 34 56 C") == [("nino_uk", "AB 12 34 56 C")]
    assert kinds("NI QQ 12 34 56 C, GB123456A, AO123456B") == []  # excluded prefixes
    assert kinds("NIR 1 85 05 78 006 084 91") == [("nir_fr", "1 85 05 78 006 084 91")]
    assert kinds("NIR 1 85 05 78 006 084 92") == []
    assert kinds("Steuer-ID 86095742719") == [("steuer_id_de", "86095742719")]
    assert kinds("Steuer-ID 86095742718") == []


def test_emails_and_phones() -> None:
    assert kinds("write to John.Doe+x@example.co.uk.") == [("email", "John.Doe+x@example.co.uk")]
    text = "call +1 (555) 123-4567, (555) 123-4567, 555-123-4567 or +44 20 7946 0958"
    assert [v for k, v in kinds(text) if k == "phone"] == [
        "+1 (555) 123-4567",
        "(555) 123-4567",
        "555-123-4567",
        "+44 20 7946 0958",
    ]


def test_cards_ibans_and_dates_are_not_phones() -> None:
    text = "on 2024-01-15 at 10:30, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00"
    assert [k for k, _ in kinds(text)] == ["card", "iban"]
    assert pii.detect(text, ["phone"]) == []


# --- input --------------------------------------------------------------------------------


def test_the_same_value_gets_the_same_placeholder_in_every_text() -> None:
    verdict = screen_input(
        ["mail a@b.com or c@d.org", "again A@b.com, card 4111 1111 1111 1111"],
        [PiiCheck(action="redact")],
    )
    assert verdict.texts == ["mail [EMAIL_1] or [EMAIL_2]", "again [EMAIL_1], card [CARD_1]"]
    assert verdict.placeholders == {
        "[EMAIL_1]": "a@b.com",
        "[EMAIL_2]": "c@d.org",
        "[CARD_1]": "4111 1111 1111 1111",
    }
    assert [d.findings for d in verdict.decisions] == [{"email": 3, "card": 1}]
    assert verdict.blocked is None


def test_only_restorable_pii_goes_into_the_placeholders() -> None:
    verdict = screen_input(
        ["a@b.com and 4111 1111 1111 1111"],
        [
            PiiCheck(action="redact", kinds=["card"], restore=False),
            PiiCheck(action="redact", kinds=["email"]),
        ],
    )
    assert verdict.texts == ["[EMAIL_1] and [CARD_1]"]
    assert verdict.placeholders == {"[EMAIL_1]": "a@b.com"}


def test_a_blocking_check_stops_the_later_ones_and_flag_only_records() -> None:
    checks = [
        KeywordsCheck(action="flag", words=["draft"]),
        PiiCheck(action="block", kinds=["email"]),
        PiiCheck(action="redact"),
    ]
    verdict = screen_input(["a Draft for a@b.com"], checks)
    assert verdict.texts == ["a Draft for a@b.com"]
    assert [(d.index, d.action) for d in verdict.decisions] == [(0, "flag"), (1, "block")]
    assert verdict.blocked is verdict.decisions[1]
    assert verdict.placeholders == {}
    assert screen_input(["no mail here"], checks).decisions == []


def test_keywords_match_whole_words_case_insensitively_unless_told() -> None:
    check = KeywordsCheck(action="redact", words=["class", "top secret"])
    verdict = screen_input(["A CLASS, a classic, a Top  Secret plan"], [check])
    assert verdict.texts == ["A [REDACTED_1], a classic, a [REDACTED_2] plan"]
    assert verdict.decisions[0].findings == {"keyword": 2}
    sensitive = KeywordsCheck(action="flag", words=["class"], case_sensitive=True)
    assert screen_input(["A CLASS"], [sensitive]).decisions == []


def test_regex_redaction_leaves_earlier_placeholders_alone() -> None:
    checks = [
        PiiCheck(action="redact", kinds=["email"]),
        RegexCheck(action="redact", patterns=[r"\d+", r"ACME-\w+"], name="ids"),
    ]
    verdict = screen_input(["a@b.com ticket 42 ACME-x"], checks)
    assert verdict.texts == ["[EMAIL_1] ticket [REDACTED_1] [REDACTED_2]"]
    assert verdict.decisions[1].findings == {"pattern_0": 1, "pattern_1": 1}
    assert verdict.decisions[1].detail == "matched 'ids'"


def test_max_length_blocks_flags_or_truncates() -> None:
    text = "x" * 50
    assert screen_input([text], [MaxLengthCheck(action="block", max_chars=40)]).blocked == Decision(
        "input", 0, "max_length", "block", {"length": 50}, "longer than 40 chars"
    )
    assert screen_input([text], [MaxLengthCheck(action="redact", max_chars=40)]).texts == ["x" * 40]
    flagged = screen_input([text, "y"], [MaxLengthCheck(action="flag", max_chars=40)])
    assert flagged.texts == [text, "y"] and flagged.decisions[0].findings == {"length": 50}
    assert screen_input([text], [MaxLengthCheck(action="block", max_chars=50)]).decisions == []


# --- output -------------------------------------------------------------------------------


def test_output_restores_the_inputs_placeholders_but_not_its_own() -> None:
    placeholders = {"[EMAIL_1]": "a@b.com"}
    verdict = screen_output(
        "I wrote to [EMAIL_1] and to c@d.org.", [PiiCheck(action="redact")], placeholders
    )
    assert verdict.text == "I wrote to a@b.com and to [EMAIL_2]."
    assert verdict.decisions[0].findings == {"email": 1}
    assert screen_output("Hi [EMAIL_1] [CARD_9]", [], placeholders).text == "Hi a@b.com [CARD_9]"


def test_a_blocked_output_shows_nothing() -> None:
    verdict = screen_output(
        "The secret is out.",
        [
            KeywordsCheck(action="block", words=["secret"]),
            MaxLengthCheck(action="flag", max_chars=1),
        ],
        {},
    )
    assert verdict.text == ""
    assert verdict.blocked is not None and verdict.decisions == [verdict.blocked]


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["answer"],
}


def test_json_schema_passes_or_fails_with_a_path_and_no_value() -> None:
    check = JsonSchemaCheck(action="block", schema=SCHEMA)
    passed = screen_output(' {"answer": "[EMAIL_1]"}\n', [check], {"[EMAIL_1]": "a@b.com"})
    assert passed.decisions == [] and passed.schema_error is None
    assert passed.text == ' {"answer": "a@b.com"}\n'

    failed = screen_output('{"answer": "ok", "age": "forty-two-secret"}', [check], {})
    assert failed.schema_error == "$.age: should be of type 'integer' (type)"
    assert "forty-two-secret" not in repr(failed.blocked)
    assert failed.repair_schema == SCHEMA
    assert failed.blocked is not None and failed.blocked.findings == {"schema": 1}

    missing = screen_output('{"age": 3}', [JsonSchemaCheck(action="flag", schema=SCHEMA)], {})
    assert missing.schema_error == "$: 'answer' is a required property (required)"
    assert missing.blocked is None and missing.text == '{"age": 3}'

    prose = screen_output("Sure! Here it is.", [check], {})
    assert prose.schema_error is not None and prose.schema_error.startswith("$: not valid JSON")

    no_repair = JsonSchemaCheck(action="block", schema=SCHEMA, repair=False)
    assert screen_output("{}", [no_repair], {}).repair_schema is None


def test_the_repair_prompt_names_the_error_and_the_schema() -> None:
    prompt = repair_prompt(SCHEMA, "$.age: should be of type 'integer' (type)")
    assert "$.age: should be of type 'integer'" in prompt
    assert '"required": [' in prompt and "only a JSON value" in prompt


# --- streams ------------------------------------------------------------------------------


def test_a_stream_is_released_a_sentence_at_a_time() -> None:
    guard = StreamGuard([], {})
    assert guard.feed("Hello wor") == ""
    assert guard.feed("ld. How ar") == "Hello world. "
    assert guard.feed("e you? Fine") == "How are you? "
    assert guard.feed(" thanks\nand") == "Fine thanks\n"
    assert guard.feed(" 3.14 is pi") == ""
    assert guard.finish() == "and 3.14 is pi"
    assert guard.decisions == [] and guard.blocked is None


def test_a_stream_catches_an_email_split_over_two_deltas() -> None:
    guard = StreamGuard([PiiCheck(action="redact", kinds=["email"])], {})
    assert guard.feed("Write to john.doe@exa") == ""
    assert guard.feed("mple.com today. More") == "Write to [EMAIL_1] today. "
    assert guard.feed(" from x@y.org. Also john.doe@example.com. ") == (
        "More from [EMAIL_2]. Also [EMAIL_1]. "
    )
    assert guard.finish() == ""
    assert [d.findings for d in guard.decisions] == [{"email": 3}]


def test_a_stream_restores_a_placeholder_split_over_deltas() -> None:
    guard = StreamGuard([], {"[EMAIL_1]": "a@b.com"})
    assert guard.feed("Sent to [EMA") == ""
    assert guard.feed("IL_1]. Done") == "Sent to a@b.com. "
    assert guard.finish() == "Done"


def test_a_stream_blocks_mid_way_and_then_releases_nothing() -> None:
    checks = [
        KeywordsCheck(action="flag", words=["plan"]),
        KeywordsCheck(action="block", words=["top secret"]),
    ]
    guard = StreamGuard(checks, {})
    assert guard.feed("The plan is fine. The top") == "The plan is fine. "
    assert guard.feed(" secret plan follows. ") == ""
    assert guard.blocked is not None and guard.blocked.index == 1
    assert guard.feed("More text. ") == "" and guard.finish() == ""
    assert [(d.index, d.findings) for d in guard.decisions] == [
        (0, {"keyword": 2}),
        (1, {"keyword": 1}),
    ]


def test_a_stream_checks_its_json_schema_at_the_end() -> None:
    guard = StreamGuard([JsonSchemaCheck(action="flag", schema=SCHEMA)], {})
    assert guard.feed('{"age": ') == ""
    assert guard.finish() == '{"age": '
    assert guard.schema_error is not None and guard.schema_error.startswith("$: not valid JSON")
    assert guard.blocked is None and guard.decisions[0].check == "json_schema"


def test_a_stream_truncates_at_max_length() -> None:
    guard = StreamGuard([MaxLengthCheck(action="redact", max_chars=10)], {})
    assert guard.feed("Short. ") == "Short. "
    assert guard.feed("Much longer. ") == "Muc"
    assert guard.feed("Even more. ") == ""
    assert guard.finish() == ""
    assert guard.decisions[0].findings == {"length": 31}


# --- decisions and errors -----------------------------------------------------------------


def test_a_decision_and_its_error_never_hold_the_matched_text() -> None:
    email = "jane.roe@example.com"
    for action in ("block", "redact", "flag"):
        verdict = screen_input([f"I am {email}"], [PiiCheck(action=action)])  # type: ignore[arg-type]
        decision = verdict.decisions[0]
        assert decision.as_event() == {
            "stage": "input",
            "index": 0,
            "check": "pii",
            "action": action,
            "findings": {"email": 1},
            "detail": None,
        }
        assert email not in repr(decision.as_event())
    error = blocked_error(decision)
    assert email not in repr(error.to_dict())


def test_blocked_errors_are_the_clients_400_on_input_and_422_on_output() -> None:
    decision = Decision("input", 2, "keywords", "block", {"keyword": 1})
    error = blocked_error(decision)
    assert isinstance(error, GuardrailBlocked) and not isinstance(error, GuardrailOutputBlocked)
    assert (error.type, error.status, category_of(error)) == ("guardrail_blocked", 400, "client")
    assert error.details == {
        "stage": "input",
        "check": "keywords",
        "index": 2,
        "findings": {"keyword": 1},
    }
    out = blocked_error(Decision("output", 0, "json_schema", "block", {"schema": 1}, "$: bad"))
    assert isinstance(out, GuardrailOutputBlocked)
    assert (out.type, out.status, category_of(out)) == ("guardrail_output_blocked", 422, "client")
    assert "$: bad" in out.message


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "input": [
                    {"type": "pii", "action": "flag"},
                    {"type": "regex", "action": "block", "patterns": ["ok", "(oops"]},
                ]
            },
            "guardrails.input[1].patterns[1]: invalid regex '(oops'",
        ),
        (
            {"input": [{"type": "regex", "action": "flag", "patterns": ["x*"]}]},
            "guardrails.input[0].patterns[0]: regex 'x*' matches the empty string",
        ),
        (
            {"input": [{"type": "json_schema", "action": "block", "schema": {}}]},
            "guardrails.input[0]: a json_schema check is only allowed in output",
        ),
        (
            {"output": [{"type": "json_schema", "action": "redact", "schema": {}}]},
            "guardrails.output[0]: action 'redact' is not allowed for a json_schema check",
        ),
        (
            {"output": [{"type": "json_schema", "action": "block", "schema": {"type": "nope"}}]},
            "guardrails.output[0].schema: invalid JSON Schema at $.type",
        ),
        (
            {"output": [{"type": "pii", "action": "flag", "kinds": ["dna"]}]},
            "guardrails.output[0].kinds[0]:",
        ),
        ({"output": [{"type": "pii", "action": "flag", "extra": 1}]}, "output[0].extra"),
        ({"output": [{"type": "max_length", "action": "flag", "max_chars": 0}]}, "max_chars"),
        ({"input": [{"type": "pii", "action": "flag"}] * 21}, "guardrails.input: "),
        ({"side": []}, "guardrails.side: "),
    ],
)
def test_a_bad_configuration_names_the_offending_check(data: Any, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Guardrails.parse(data)
    assert message in caught.value.message
    assert caught.value.status == 400


def test_a_good_configuration_round_trips_and_works_as_a_field() -> None:
    data = {
        "input": [{"type": "pii", "action": "redact", "kinds": ["email"], "restore": False}],
        "output": [{"type": "json_schema", "action": "block", "schema": SCHEMA, "repair": True}],
    }
    parsed = Guardrails.parse(data)
    assert parsed.model_dump() == {
        "input": [{"type": "pii", "action": "redact", "kinds": ["email"], "restore": False}],
        "output": [{"type": "json_schema", "action": "block", "schema": SCHEMA, "repair": True}],
    }
    assert Guardrails.parse(parsed.model_dump()) == parsed

    class Body(BaseModel):
        guardrails: Guardrails | None = None

    assert Body.model_validate({"guardrails": data}).guardrails == parsed
    with pytest.raises(ValidationError):
        Body.model_validate({"guardrails": {"input": [data["output"][0]]}})


def test_merged_puts_the_tenants_checks_first() -> None:
    tenant = Guardrails.parse({"input": [{"type": "pii", "action": "redact"}]})
    agent = Guardrails.parse(
        {
            "input": [{"type": "keywords", "action": "block", "words": ["x"]}],
            "output": [{"type": "max_length", "action": "flag", "max_chars": 9}],
        }
    )
    merged = Guardrails.merged(tenant, agent)
    assert [c.type for c in merged.input] == ["pii", "keywords"]
    assert [c.type for c in merged.output] == ["max_length"]
    assert Guardrails.merged(None, None) == Guardrails()
    assert Guardrails.merged(None, agent).input == agent.input


def test_a_stream_shows_what_the_whole_answer_would_show() -> None:
    checks = [
        PiiCheck(action="redact"),
        KeywordsCheck(action="flag", words=["fox"]),
        RegexCheck(action="redact", patterns=[r"\d\d:\d\d"]),
    ]
    sentences = [
        "Mail a@b.com now. ",
        "Card 4111 1111 1111 1111!\n",
        "Call +44 20 7946 0958 at 10:30? ",
        "The fox said… ",
        "See [EMAIL_1]. ",
        "IBAN GB82 WEST 1234 5698 7654 32. ",
        "x@y.org\n",
    ]
    text = "".join(sentences[(i * 5) % 7] for i in range(40))
    placeholders = {"[EMAIL_1]": "q@r.com"}
    guard = StreamGuard(checks, placeholders)
    shown = [guard.feed(text[i : i + 7]) for i in range(0, len(text), 7)]
    shown.append(guard.finish())
    whole = screen_output(text, checks, placeholders)
    assert "".join(shown) == whole.text
    assert "q@r.com" in whole.text and "a@b.com" not in whole.text
    assert [d.as_event() for d in guard.decisions] == [d.as_event() for d in whole.decisions]
    assert guard.decisions[0].findings == {"email": 12, "card": 6, "phone": 5, "iban": 6}


def test_json_schema_validates_the_answer_with_placeholders_restored() -> None:
    schema = {"type": "object", "properties": {"to": {"type": "string", "format": "email"}}}
    check = JsonSchemaCheck(action="block", schema=schema)
    assert screen_output('{"to": "[EMAIL_1]"}', [check], {"[EMAIL_1]": "a@b.com"}).blocked is None
    assert screen_output('{"to": "nobody"}', [check], {}).schema_error == (
        "$.to: should be a valid 'email' (format)"
    )


def test_a_schema_may_only_refer_within_itself() -> None:
    local = {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}
    assert screen_output("3", [JsonSchemaCheck(action="block", schema=local)], {}).blocked is None
    with pytest.raises(InvalidRequest, match="only references within the schema"):
        Guardrails.parse(
            {"output": [{"type": "json_schema", "action": "block", "schema": {"$ref": "x.json"}}]}
        )
