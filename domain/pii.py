"""Detectors of personal data in free text: each returns the spans it found, with their kind.

Every detector is pure and checks what can be checked (Luhn for cards, mod 97 for IBANs and
French NIRs, control letters for Spanish DNIs and NIEs, the excluded ranges of US SSNs and UK
National Insurance numbers), so that ordinary numbers are not taken for personal data.
`detect` runs them in `PRIORITY` order and drops a span that overlaps one already found, so
a card number or an IBAN is never also counted as a phone number.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, get_args

PiiKind = Literal[
    "email",
    "phone",
    "card",
    "iban",
    "ssn_us",
    "nino_uk",
    "dni_es",
    "nie_es",
    "nir_fr",
    "steuer_id_de",
]
PII_KINDS: tuple[PiiKind, ...] = get_args(PiiKind)
"""Every kind of personal data a detector finds."""


@dataclass(frozen=True)
class Span:
    """A piece of personal data found in a text: `text[start:end]` is `value`."""

    kind: PiiKind
    start: int
    end: int
    value: str


def normalized(span: Span) -> str:
    """The value with its formatting dropped, so two spellings of one value compare equal."""
    if span.kind == "email":
        return span.value.lower()
    return re.sub(r"[\s\-./()]", "", span.value).upper()


# --- checksums ----------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (payment card numbers)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
"""IBAN length by country (ISO 13616 registry); other countries are checked by mod 97 only."""


def iban_valid(iban: str) -> bool:
    """Whether `iban` (spaces allowed) has its country's length and passes ISO 7064 mod 97."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni_letter(number: int) -> str:
    """The control letter of a Spanish DNI number (the letter of a NIE is computed alike)."""
    return _DNI_LETTERS[number % 23]


def nir_key(first13: str) -> int:
    """The key of a French NIR: 97 - (number mod 97), Corsica's 2A/2B counted as 19/18."""
    department = first13[5:7].upper()
    corsica = {"2A": "19", "2B": "18"}.get(department)
    digits = first13[:5] + corsica + first13[7:] if corsica else first13
    return 97 - int(digits) % 97


def steuer_id_valid(digits: str) -> bool:
    """Whether 11 digits are a German tax id: no leading 0, exactly one digit repeated (2 or
    3 times) among the first ten, and the ISO 7064 MOD 11,10 check digit."""
    if not re.fullmatch(r"[1-9]\d{10}", digits):
        return False
    counts = sorted((digits[:10].count(d) for d in set(digits[:10])), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    product = 10
    for char in digits[:10]:
        total = (int(char) + product) % 10 or 10
        product = total * 2 % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


# --- detectors ----------------------------------------------------------------------------

_NOT_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_NOT_ALNUM_AFTER = r"(?![A-Za-z0-9])"

_EMAIL = re.compile(
    r"(?<![\w.%+'-])[\w.%+'-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,63}(?![\w-])"
)


def find_emails(text: str) -> list[Span]:
    """E-mail addresses (`local@domain.tld`)."""
    return [Span("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]


_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")


def find_ibans(text: str) -> list[Span]:
    """IBANs, compact or in groups of four, with a valid length and checksum."""
    found: list[Span] = []
    for m in _IBAN.finditer(text):
        candidate = m.group()
        expected = IBAN_LENGTHS.get(candidate[:2])
        # the candidate may run into following upper-case words: try the lengths that end on
        # a boundary, longest first
        for end in range(len(candidate), 0, -1):
            after = (
                candidate[end : end + 1] if end < len(candidate) else text[m.end() : m.end() + 1]
            )
            if after.isalnum():
                continue
            piece = candidate[:end].rstrip()
            compact = piece.replace(" ", "")
            if (expected is None or len(compact) == expected) and iban_valid(compact):
                found.append(Span("iban", m.start(), m.start() + len(piece), piece))
                break
    return found


_DIGIT_RUN = re.compile(r"(?<![\w+])\d+(?:[ -]\d+)*(?![\w])")


def _group_spans(run: re.Match[str]) -> list[tuple[int, int]]:
    return [(run.start() + g.start(), run.start() + g.end()) for g in re.finditer(r"\d+", run[0])]


def find_cards(text: str) -> list[Span]:
    """Payment card numbers: 13–19 digits (spaces or dashes between groups), a first digit
    of 2–6 (the major networks' ranges), passing Luhn."""
    found: list[Span] = []
    for run in _DIGIT_RUN.finditer(text):
        groups = _group_spans(run)
        i = 0
        while i < len(groups):
            last: int | None = None  # the last group of the longest card starting at group i
            digits = ""
            for j in range(i, len(groups)):
                digits += text[groups[j][0] : groups[j][1]]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and digits[0] in "23456" and luhn_valid(digits):
                    last = j
            if last is None:
                i += 1
                continue
            start, end = groups[i][0], groups[last][1]
            found.append(Span("card", start, end, text[start:end]))
            i = last + 1
    return found


_SSN = re.compile(_NOT_ALNUM_BEFORE + r"(\d{3})([- ])(\d{2})\2(\d{4})" + _NOT_ALNUM_AFTER)


def find_ssns(text: str) -> list[Span]:
    """US Social Security numbers `AAA-GG-SSSS` outside the never-issued ranges (area 000,
    666 or 9xx, group 00, serial 0000)."""
    found: list[Span] = []
    for m in _SSN.finditer(text):
        area, group, serial = m[1], m[3], m[4]
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue
        found.append(Span("ssn_us", m.start(), m.end(), m.group()))
    return found


_NINO = re.compile(
    _NOT_ALNUM_BEFORE + r"([A-Za-z]{2}) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-Da-d])" + _NOT_ALNUM_AFTER
)
_NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def find_ninos(text: str) -> list[Span]:
    """UK National Insurance numbers (`AB 12 34 56 C`) without the excluded prefixes."""
    found: list[Span] = []
    for m in _NINO.finditer(text):
        prefix = m[1].upper()
        if prefix[0] in "DFIQUV" or prefix[1] in "DFIOQUV" or prefix in _NINO_BAD_PREFIXES:
            continue
        found.append(Span("nino_uk", m.start(), m.end(), m.group()))
    return found


_DNI = re.compile(_NOT_ALNUM_BEFORE + r"(\d{8})[ -]?([A-Za-z])" + _NOT_ALNUM_AFTER)


def find_dnis(text: str) -> list[Span]:
    """Spanish DNIs: 8 digits and their control letter."""
    return [
        Span("dni_es", m.start(), m.end(), m.group())
        for m in _DNI.finditer(text)
        if dni_letter(int(m[1])) == m[2].upper()
    ]


_NIE = re.compile(_NOT_ALNUM_BEFORE + r"([XYZxyz])[ -]?(\d{7})[ -]?([A-Za-z])" + _NOT_ALNUM_AFTER)


def find_nies(text: str) -> list[Span]:
    """Spanish NIEs: X, Y or Z, 7 digits and the control letter."""
    return [
        Span("nie_es", m.start(), m.end(), m.group())
        for m in _NIE.finditer(text)
        if dni_letter(int(str("XYZ".index(m[1].upper())) + m[2])) == m[3].upper()
    ]


_NIR = re.compile(
    _NOT_ALNUM_BEFORE
    + r"([12]) ?(\d{2}) ?(0[1-9]|1[0-2]|[2-9]\d) ?(\d{2}|2[ABab]) ?(\d{3}) ?(\d{3}) ?(\d{2})"
    + _NOT_ALNUM_AFTER
)


def find_nirs(text: str) -> list[Span]:
    """French social security numbers (NIR): 13 digits and a key of 97 - (n mod 97)."""
    found: list[Span] = []
    for m in _NIR.finditer(text):
        first13 = "".join(m.groups()[:6])
        if nir_key(first13) == int(m[7]):
            found.append(Span("nir_fr", m.start(), m.end(), m.group()))
    return found


_STEUER_ID = re.compile(_NOT_ALNUM_BEFORE + r"(?<!\+)(\d{2}) ?(\d{3}) ?(\d{3}) ?(\d{3})(?![\w])")


def find_steuer_ids(text: str) -> list[Span]:
    """German tax ids (Steuer-IdNr): 11 digits with their digit rules and check digit."""
    return [
        Span("steuer_id_de", m.start(), m.end(), m.group())
        for m in _STEUER_ID.finditer(text)
        if steuer_id_valid("".join(m.groups()))
    ]


_PHONE_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d+(?:(?:[ .-]|[ .-]?\(|\)[ .-]?)\d+){0,8}\)?")
_PHONE_NATIONAL = re.compile(
    r"(?<![\w+\-.])(?:"
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567
    r"(?:1[-. ])?(?:\(\d{3}\) ?|\d{3}([-. ]))\d{3}(?(1)\1|[-. ])\d{4}"
    # French: 06 12 34 56 78 / 06.12.34.56.78 / 0612345678
    r"|0[1-9](?:([ .-]?)\d{2})(?:\2\d{2}){3}"
    # trunk-prefixed with spaces: 020 7946 0958, 07700 900123, 030 1234567
    r"|0\d{2,4} \d{3,4} ?\d{3,4}"
    r")(?![\w\-.]\d|\w)"
)


def find_phones(text: str) -> list[Span]:
    """Phone numbers: international `+` numbers of 8–15 digits (spaces, dots, dashes and
    parentheses allowed) and common national formats (North American, French, trunk `0`)."""
    found: list[Span] = []
    for m in _PHONE_INTERNATIONAL.finditer(text):
        value = m.group()
        if value.endswith(")") and "(" not in value:
            value = value[:-1]
        # drop trailing groups past 15 digits (a number followed by other digits)
        while sum(c.isdigit() for c in value) > 15:
            cut = max(value.rfind(" "), value.rfind("."), value.rfind("-"), value.rfind("("))
            if cut <= 0:
                break
            value = value[:cut].rstrip(" .-(")
        digits = sum(c.isdigit() for c in value)
        if 8 <= digits <= 15:
            found.append(Span("phone", m.start(), m.start() + len(value), value))
    for m in _PHONE_NATIONAL.finditer(text):
        digits = sum(c.isdigit() for c in m.group())
        if 9 <= digits <= 11:
            found.append(Span("phone", m.start(), m.end(), m.group()))
    return found


DETECTORS: dict[PiiKind, Callable[[str], list[Span]]] = {
    "email": find_emails,
    "iban": find_ibans,
    "card": find_cards,
    "nir_fr": find_nirs,
    "ssn_us": find_ssns,
    "nino_uk": find_ninos,
    "dni_es": find_dnis,
    "nie_es": find_nies,
    "steuer_id_de": find_steuer_ids,
    "phone": find_phones,
}
"""Every detector, in `detect`'s priority order: a span overlapping one found by an earlier
detector is dropped (an e-mail's digits are not a phone, nor is a card number)."""

PRIORITY: tuple[PiiKind, ...] = tuple(DETECTORS)


_SIX_DIGITS = re.compile(r"\d(?:\D*?\d){5}")


def _may_hold(kind: PiiKind, text: str) -> bool:
    """A cheap test that `text` may hold a `kind` at all: an e-mail address has an `@`;
    every other kind has at least six digits (a UK National Insurance number has six)."""
    if kind == "email":
        return "@" in text
    return _SIX_DIGITS.search(text) is not None


def detect(text: str, kinds: Iterable[PiiKind] | None = None) -> list[Span]:
    """The non-overlapping spans of `kinds` (None: every kind) in `text`, in text order.

    Every detector runs whatever `kinds` asks for, so that the overlap rule holds: with
    `kinds=["phone"]` a card number is still not reported as a phone number.
    """
    wanted = set(PII_KINDS if kinds is None else kinds)
    taken: list[Span] = []  # non-overlapping, in text order
    starts: list[int] = []
    for kind, detector in DETECTORS.items():
        if not _may_hold(kind, text):
            continue
        for span in sorted(detector(text), key=lambda s: (s.start, -s.end)):
            i = bisect.bisect_left(starts, span.start)
            if i > 0 and taken[i - 1].end > span.start:
                continue
            if i < len(taken) and taken[i].start < span.end:
                continue
            taken.insert(i, span)
            starts.insert(i, span.start)
    return [s for s in taken if s.kind in wanted]
