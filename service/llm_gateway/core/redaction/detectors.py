"""Candidate patterns and validators, one or more per entity (pure).

Each detector is a regular expression that finds candidates and a validator that accepts or rejects
a candidate, so one regex pass finds every kind and the validators (checksums from python-stdnum,
numbering plans from phonenumbers, the ``ipaddress`` parser) run only on the few candidates.
Patterns are anchored on both sides (look-arounds) so a candidate never starts or ends inside a
longer run of the same characters: that keeps IDs, hashes and versions whole. Some patterns need a
context word before the value (``SSN 123456789``), in a look-behind: the longest look-behind is
``LOOKBEHIND`` characters, and a stream keeps that much released text as context.

Every detector states ``max_len``: no text longer than that can still turn into its entity, so a
stream never holds more than ``max_len`` characters for it (see
:class:`~llm_gateway.core.redaction.engine.StreamRedactor`). The one exception is a detector with a
``run``: its matches end in an unbounded run of those characters, and a candidate longer than
``max_len`` is already a whole match (every bounded part and every minimum length fits within it),
so it is redacted at once and the rest of its run is swallowed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn

from llm_gateway.core.redaction.entities import Entity

__all__ = ["DEFAULT_PHONE_REGIONS", "LOOKBEHIND", "Detector", "build_detectors", "prefilter_pattern"]


@dataclass(frozen=True, slots=True)
class Detector:
    """``pattern`` finds candidates, ``validate`` accepts them; ``max_len`` bounds them (see the module).

    Two cheap checks (searched before the full pattern, with the same ``regex`` semantics) let the
    engine skip a detector: every match contains something ``trigger`` finds (or has it in its
    look-behind context, within ``LOOKBEHIND`` characters before it), and every partial match
    (the start of a possible match cut by the end of the text so far) either does too or is at most
    ``tail_len`` characters long and ends with something ``tail`` matches. They may over-approximate,
    never under-: skipping must not change a result.
    """

    entity: Entity
    pattern: str
    validate: Callable[[str], bool]
    max_len: int
    trigger: str = r"\d"
    tail: str | None = None
    tail_len: int = 0
    run: str | None = None


#: The longest text any detector's look-behind reads (`aws_secret_access_key = "`, `social security
#: number: `); a stream keeps this much released text before what it holds (a test checks it).
LOOKBEHIND = 48

#: Where phone numbers written in national format are recognised (ISO 3166 region codes).
DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "ES", "MX")

# File extensions that look like top-level domains in `image@2x.png`-style names.
_FILE_EXTENSIONS = frozenset({
    "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "pdf", "txt", "md", "csv",
    "json", "yaml", "yml", "xml", "html", "htm", "css", "js", "ts", "py", "rb", "go", "rs", "java", "kt",
    "swift", "c", "h", "cpp", "hpp", "sh", "zip", "gz", "tar", "tgz", "mp3", "mp4", "mov", "wav", "log",
})  # fmt: skip


def _valid_email(candidate: str) -> bool:
    local, _, domain = candidate.rpartition("@")
    tld = domain.rsplit(".", 1)[-1].lower()
    return bool(local) and not local.startswith(".") and tld not in _FILE_EXTENSIONS and tld.isalpha()


def _digits(candidate: str) -> str:
    return "".join(ch for ch in candidate if ch.isdigit())


def _valid_card(candidate: str) -> bool:
    digits = _digits(candidate)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _valid_ssn(candidate: str) -> bool:
    digits = _digits(candidate)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        len(digits) == 9
        and area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
    )


def _valid_iban(candidate: str) -> bool:
    # ISO 13616 shape and mod-97 are evidence enough; national check digits are not required.
    return bool(iban.is_valid(candidate, check_country=False))


def _valid_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _always(_: str) -> bool:
    return True


# Shapes that phone numbers share but never are: dates and date-times (2024-11-30 12, 30.11.2024)
# and US SSNs (123-45-6789: the SSN detector's, valid or not).
_NOT_A_PHONE = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}(?!\d)|\d{3}-\d{2}-\d{4}$)"
)
# How a national number is written when it is one: a trunk prefix (0...), an area code in
# parentheses, or the North American 3-3-4 grouping.
_NATIONAL_SHAPE = re.compile(r"^(?:0|\(|\d{3}[ .-]\d{3}[ .-]\d{4}$)")


def _phone_validator(regions: Collection[str]) -> Callable[[str], bool]:
    """Accepts what is written like a phone number of one of ``regions`` (or in E.164, with ``+``).

    Shape and length, not assignment: a privacy filter redacts a number that is not in service
    (US 555 numbers) as readily as one that is. An international number needs a possible length;
    a national one a possible length and a national shape (see ``_NATIONAL_SHAPE``), or to be a
    valid number of the region (Spanish ``912 345 678``), so that SKUs and order numbers stay.
    """

    def valid(candidate: str) -> bool:
        if _NOT_A_PHONE.match(candidate) or not 7 <= sum(ch.isdigit() for ch in candidate) <= 15:
            return False
        international = candidate.startswith("+")
        for region in [None] if international else regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_possible_number(number):
                continue
            if international or _NATIONAL_SHAPE.match(candidate) or phonenumbers.is_valid_number(number):
                return True
        return False

    return valid


def _literal_alternation(literals: Iterable[str]) -> str:
    return "|".join(re.escape(literal) for literal in sorted(set(literals), key=len, reverse=True))


def _prefixes_tail(literals: Iterable[str]) -> str:
    """A ``tail`` for literals: any proper prefix of one, at the end of the text."""
    prefixes = {literal[:n] for literal in literals for n in range(1, len(literal))}
    return f"(?:{_literal_alternation(prefixes)})$"


# Credentials whose format starts with a fixed prefix, from widespread secret-scanning rule sets
# (gitleaks' among them). Each body is a run of token characters, so every one of them ends the same
# way; an AWS key id has a fixed length instead.
_TOKEN_BODY = "[A-Za-z0-9_-]"
_TOKENS = {  # prefix -> minimum body length
    "sk-": 20,  # OpenAI (sk-proj-, sk-svcacct-, ...), Anthropic (sk-ant-...)
    "sk_live_": 16,  # Stripe secret and restricted keys
    "sk_test_": 16,
    "rk_live_": 16,
    "rk_test_": 16,
    "ghp_": 36,  # GitHub classic tokens
    "gho_": 36,
    "ghu_": 36,
    "ghs_": 36,
    "ghr_": 36,
    "github_pat_": 40,  # GitHub fine-grained tokens
    "glpat-": 20,  # GitLab
    "xoxa-": 10,  # Slack
    "xoxb-": 10,
    "xoxp-": 10,
    "xoxo-": 10,
    "xoxs-": 10,
    "xoxr-": 10,
    "AIza": 35,  # Google API keys
    "hf_": 30,  # Hugging Face
    "npm_": 36,  # npm
    "pypi-AgEIcHlwaS5vcmc": 50,  # PyPI
    "dop_v1_": 64,  # DigitalOcean
    "shpat_": 32,  # Shopify
    "shpca_": 32,
    "shppa_": 32,
    "shpss_": 32,
    "gsk_": 40,  # Groq
}
_AWS_KEY_IDS = ("AKIA", "ASIA", "ABIA", "ACCA", "A3T")  # long-term, temporary (STS), ...

_TOKEN_PATTERN = (
    rf"(?<!{_TOKEN_BODY})(?:"
    + "|".join(f"{re.escape(prefix)}{_TOKEN_BODY}{{{n},}}" for prefix, n in _TOKENS.items())
    + rf"|SG\.{_TOKEN_BODY}{{22}}\.{_TOKEN_BODY}{{43,}}"  # SendGrid
    + r"|(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}"
    + rf")(?!{_TOKEN_BODY})"
)
_TOKEN_LITERALS = (*_TOKENS, "SG.", *_AWS_KEY_IDS)

_PHONE_CONTEXT = (
    r"(?i:phone|tel|mobile|móvil|movil|celular|cell|teléfono|telefono|telefon|handy|fax|whatsapp)"
)


def build_detectors(phone_regions: Collection[str] = DEFAULT_PHONE_REGIONS) -> tuple[Detector, ...]:
    """Every detector, in priority order: where two candidates start at the same place, the earlier
    detector wins. ``phone_regions`` are where national phone formats are recognised."""
    return (
        Detector(
            Entity.SECRET,
            _TOKEN_PATTERN,
            _always,
            max_len=256,
            trigger=_literal_alternation(_TOKEN_LITERALS),
            tail=_prefixes_tail(_TOKEN_LITERALS),
            tail_len=max(map(len, _TOKEN_LITERALS)) - 1,
            run=_TOKEN_BODY,
        ),
        Detector(  # JWTs: header and claims bounded, the signature a run
            Entity.SECRET,
            rf"(?<!{_TOKEN_BODY})eyJ{_TOKEN_BODY}{{8,512}}\.eyJ{_TOKEN_BODY}{{8,4096}}\."
            rf"{_TOKEN_BODY}{{8,}}(?!{_TOKEN_BODY})",
            _always,
            max_len=3 + 512 + 4 + 4096 + 1 + 8,
            trigger="eyJ",
            tail="(?:e|ey)$",
            tail_len=2,
            run=_TOKEN_BODY,
        ),
        Detector(  # AWS secret access keys: 40 characters of base64, recognisable only by their name
            Entity.SECRET,
            r"(?<=(?i:aws_?secret_?access_?key|secret_?access_?key|aws_?secret(?:_?key)?)"
            r"[\"']?\s{0,3}[:=]\s{0,3}[\"']?)"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
            _always,
            max_len=40,
            trigger="(?i:secret)",
        ),
        Detector(
            Entity.SECRET,
            r"-----BEGIN[A-Z ]{0,32} PRIVATE KEY-----[^\"]{0,8192}?-----END[A-Z ]{0,32} PRIVATE KEY-----",
            _always,
            max_len=2 * (len("-----BEGIN PRIVATE KEY-----") + 32) + 8192,
            trigger="-----BEGIN",
            tail=r"-$|-B$|-BE$|-BEG$|-BEGI$",
            tail_len=len("-----BEGI"),
        ),
        Detector(
            Entity.EMAIL,
            r"(?<![\w.%+*@\\-])[\w.%+-]{1,64}+@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[^\W\d_]{2,63}(?![\w-])",
            _valid_email,
            max_len=64 + 1 + 9 * 64 + 63,
            trigger="@",
            tail=r"[\w.%+-]$",
            tail_len=64,
        ),
        Detector(
            Entity.IBAN,
            r"(?<!\w)[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,4})?(?!\w)",
            _valid_iban,
            max_len=4 + 8 * 5 + 5,
            tail="[A-Z]$",
            tail_len=2,
        ),
        Detector(Entity.US_SSN, r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])", _valid_ssn, max_len=11),
        Detector(  # without separators, or with spaces: only after a word that says what it is
            Entity.US_SSN,
            r"(?<=(?i:\bssn|\bsocial[ _-]security(?:[ _-](?:number|num|no\.?))?)[\"']?[\s:#=]{0,3}[\"']?"
            r"(?:is\s{1,2})?)\d{3} ?\d{2} ?\d{4}(?![\w-])",
            _valid_ssn,
            max_len=11,
            trigger="(?i:ssn|social)",
        ),
        Detector(
            Entity.CREDIT_CARD,
            # Grouped as card numbers are (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4, 4-4-5) or not at all, so that
            # an expiry date after the number (4242 4242 4242 4242 12/27) is not read as more digits.
            r"(?<![\w-]|\d\.)(?:"
            r"\d{4}[ \u00a0-]\d{4}[ \u00a0-]\d{4}[ \u00a0-]\d{4}(?:[ \u00a0-]\d{3})?"
            r"|\d{4}[ \u00a0-]\d{6}[ \u00a0-]\d{4,5}|\d{4}[ \u00a0-]\d{4}[ \u00a0-]\d{5}|\d{13,19}"
            r")(?![\w-]|\.\d)",
            _valid_card,
            max_len=19 + 4,
        ),
        Detector(
            Entity.IP_ADDRESS,
            r"(?<![\d.]|[vV])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?!\d|\.\d)",
            _valid_ip,
            max_len=15,
        ),
        Detector(
            Entity.IP_ADDRESS,  # not inside a longer run of groups; after a label (`IP:`) is fine
            r"(?<![\w.]|[0-9A-Fa-f]:|::)(?:"
            r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
            r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
            r"|::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
            r")(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:]|\.\w)",
            _valid_ip,
            max_len=45,
            trigger=":",
            tail="[0-9A-Fa-f]$",
            tail_len=4,
        ),
        Detector(
            Entity.PHONE,
            r"(?<![\w+./-])(?:"
            r"\+[1-9]\d{6,14}"  # E.164
            # international, grouped
            r"|\+[1-9]\d{0,3}(?:[ .-]?\(0\))?(?:[ .\-/]?(?:\(\d{1,5}\)|\d{1,5})){1,6}"
            # National, grouped as national numbers are written: a trunk prefix (030 12345678,
            # 0171/1234567), an area code in parentheses, or the 3-3-4, 3-3-3, 3-2-2-2 and 2-4-4
            # groupings (US, Spain, Mexico). Dates and versions have none of these shapes, so the
            # prefilter (which keeps the `\b`) rules the detector out of text that only has those.
            r"|\b0\d{2,4}(?:[ .\-/]\d{2,8}){1,3}"
            r"|\(\d{2,5}\)[ .-]?\d{2,8}(?:[ .\-/]\d{2,8}){0,3}"
            r"|\b\d{3}[ .-]\d{3}[ .-]\d{3,4}|\b\d{3}[ .-]\d{2}[ .-]\d{2}[ .-]\d{2}"
            r"|\b\d{2}[ .-]\d{4}[ .-]\d{4}"
            r")(?![\w:/-]|\.\d)",
            _phone_validator(phone_regions),
            max_len=60,
            tail=r"[+(]$",
            tail_len=1,
        ),
        Detector(  # national numbers without separators: only after a word that says what they are
            Entity.PHONE,
            rf"(?<={_PHONE_CONTEXT}[^\d\n]{{0,12}})\+?\d{{7,14}}(?![\w-]|\.\d)",
            _phone_validator(phone_regions),
            max_len=15,
            trigger=_PHONE_CONTEXT,
        ),
    )


def prefilter_pattern(pattern: str) -> bytes:
    """``pattern`` (a detector's, or its trigger or tail) without look-arounds, ``\\K`` and possessive
    quantifiers, for hyperscan.

    It matches everything ``pattern`` matches and more, so text in which it finds nothing cannot
    hold a match of ``pattern``. Valid for ASCII text only: the full pattern's ``\\d``
    and ``\\w`` also match other scripts' characters, and its non-ASCII characters are left out.
    """
    pattern = _drop_lookarounds(pattern).replace(r"\K", "")
    pattern = re.sub(r"\\u[0-9A-Fa-f]{4}", "", re.sub(r"(?<=[}+*?])\+", "", pattern))
    # Large bounded repeats (a JWT's 4,096, a PEM body's 8,192) made the combined database take over
    # a second to compile; unbounded, they match more, which a prefilter may.
    pattern = re.sub(r"\{(\d+),(\d{3,})\}", r"{\1,}", pattern)
    return pattern.encode("ascii", "ignore")


def _drop_lookarounds(pattern: str) -> str:
    """``pattern`` with every ``(?=..)``, ``(?!..)``, ``(?<=..)`` and ``(?<!..)`` group removed."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            i = _group_end(pattern, i)
            continue
        step = 2 if pattern[i] == "\\" else 1
        out.append(pattern[i : i + step])
        i += step
    return "".join(out)


def _group_end(pattern: str, start: int) -> int:
    """The index after the group opening at ``start`` (escapes and character classes skipped)."""
    depth, i, in_class = 0, start, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith("[]", i) or pattern.startswith("[^]", i):
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced group at {start} in {pattern!r}")
