"""Candidate patterns and validators, one per entity (pure).

Each detector is a regular expression that finds candidates and a validator that accepts or rejects
a candidate, so one regex pass over the text finds every kind at once and the validators (checksums
from python-stdnum, numbering plans from phonenumbers, the ``ipaddress`` parser) run only on the
few candidates. Patterns are anchored on both sides (look-arounds) so a candidate never starts or
ends inside a longer run of the same characters: that keeps IDs, hashes and versions whole.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn

from llm_gateway.core.redaction.entities import Entity

__all__ = ["DETECTORS", "Detector", "prefilter_pattern"]


@dataclass(frozen=True, slots=True)
class Detector:
    """``pattern`` finds candidates, ``validate`` accepts them.

    Two cheap checks (stdlib ``re``, searched before the full pattern) let the engine skip a detector:
    every match contains something ``trigger`` finds, and every partial match (the start of a possible
    match cut by the end of the text so far) either does too or ends with something ``tail`` matches.
    They may over-approximate, never under-: skipping must not change a result.
    """

    entity: Entity
    pattern: str
    validate: Callable[[str], bool]
    trigger: str = r"\d"
    tail: str | None = None


# File extensions that look like top-level domains in `image@2x.png`-style names.
_FILE_EXTENSIONS = frozenset(
    {
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "webp",
        "bmp",
        "ico",
        "tif",
        "tiff",
        "pdf",
        "txt",
        "md",
        "csv",
        "json",
        "yaml",
        "yml",
        "xml",
        "html",
        "htm",
        "css",
        "js",
        "ts",
        "py",
        "rb",
        "go",
        "rs",
        "java",
        "kt",
        "swift",
        "c",
        "h",
        "cpp",
        "hpp",
        "sh",
        "zip",
        "gz",
        "tar",
        "tgz",
        "mp3",
        "mp4",
        "mov",
        "wav",
        "log",
    }
)


def _valid_email(candidate: str) -> bool:
    local, _, domain = candidate.rpartition("@")
    tld = domain.rsplit(".", 1)[-1].lower()
    return bool(local) and not local.startswith(".") and tld not in _FILE_EXTENSIONS and tld.isalpha()


def _digits(candidate: str) -> str:
    return "".join(ch for ch in candidate if ch.isdigit())


def _valid_card(candidate: str) -> bool:
    digits = _digits(candidate)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _valid_phone(candidate: str) -> bool:
    try:
        number = phonenumbers.parse(candidate, None if candidate.startswith("+") else "US")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def _valid_ssn(candidate: str) -> bool:
    area, group, serial = candidate.split("-")
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _valid_iban(candidate: str) -> bool:
    return bool(iban.is_valid(candidate))


def _valid_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _always(_: str) -> bool:
    return True


#: In priority order: where two candidates start at the same place, the earlier detector wins.
DETECTORS: tuple[Detector, ...] = (
    Detector(
        Entity.SECRET,
        r"(?<![\w-])(?:"
        r"sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}"
        r"|AKIA[0-9A-Z]{16}"
        r"|gh[pousr]_[A-Za-z0-9]{36,}"
        r"|xox[abposr]-[A-Za-z0-9-]{10,}"
        r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
        r")(?![\w-])",
        _always,
        trigger=r"sk-|AKIA|gh[pousr]_|xox[abposr]-|eyJ",
        tail=r"(?:s|sk|A|AK|AKI|g|gh|gh[pousr]|x|xo|xox|xox[abposr]|e|ey|eyJ)$",
    ),
    Detector(
        Entity.EMAIL,
        r"(?<![\w.%+*@-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])",
        _valid_email,
        trigger="@",
        tail=r"[A-Za-z0-9._%+-]$",
    ),
    Detector(
        Entity.IBAN,
        r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w])",
        _valid_iban,
        tail="[A-Z]$",
    ),
    Detector(Entity.US_SSN, r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])", _valid_ssn),
    Detector(Entity.CREDIT_CARD, r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w.-])", _valid_card),
    Detector(
        Entity.PHONE,
        r"(?<![\w+.-])(?:"
        r"\+[1-9]\d{6,14}"
        r"|\+[1-9]\d{0,2}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}"
        r"|\(\d{3}\) ?\d{3}[ .-]\d{4}"
        r"|\d{3}[ .-]\d{3}[ .-]\d{4}"
        r")(?![\w.-])",
        _valid_phone,
        tail=r"[+(]$",
    ),
    Detector(Entity.IP_ADDRESS, r"(?<![\w.:])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w.:])", _valid_ip),
    Detector(
        Entity.IP_ADDRESS,
        r"(?<![\w.:])(?:"
        r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
        r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
        r"|::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
        r")(?![\w.:])",
        _valid_ip,
        trigger=":",
        tail="[0-9A-Fa-f]$",
    ),
)


def prefilter_pattern(detector: Detector) -> bytes:
    """``detector.pattern`` without its look-arounds and possessive quantifiers, for hyperscan.

    It matches everything the full pattern matches and more, so text in which it finds nothing
    cannot hold a match of the full pattern. Valid for ASCII text only: the full pattern's ``\\d``
    also matches other scripts' digits.
    """
    pattern = re.sub(r"\(\?<!\[[^\]]*\]\)", "", detector.pattern)
    pattern = re.sub(r"\(\?!\[[^\]]*\]\)", "", pattern)
    return pattern.replace("++", "+").encode()
