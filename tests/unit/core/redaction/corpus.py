"""A generated corpus of realistic text: entities of every family in many contexts, and hard negatives.

Seeded, so a run is reproducible; large enough (hundreds of examples a type) that a recall figure
means something. Each positive is ``(entity, value, text)``: ``value`` must be gone from the
redacted text. Each negative is a text that must come out unchanged.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator

from stdnum import luhn

from llm_gateway.core.redaction import Entity

Generator = Callable[[random.Random], str]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _email(rng: random.Random) -> str:
    first = rng.choice(["jane", "john", "zoë", "josé", "müller", "ana.maría", "li", "o'neil", "x"])
    surname = rng.choice(["doe", "smith", "garcía"])
    local = rng.choice([first, f"{first}.{surname}", f"{first}+news", f"{first}_{rng.randint(1, 99)}"])
    domain = rng.choice(
        ["example.com", "mail.example.co.uk", "empresa.es", "firma.de", "corp.example.mx", "x.io"]
    )
    return f"{local}@{domain}".replace("'", "")


def _card(rng: random.Random) -> str:
    prefix, length, groups = rng.choice(
        [("4", 16, (4, 4, 4, 4)), ("51", 16, (4, 4, 4, 4)), ("2221", 16, (4, 4, 4, 4)), ("37", 15, (4, 6, 5)),
         ("6011", 16, (4, 4, 4, 4)), ("4", 13, (4, 4, 5))]
    )  # fmt: skip
    body = prefix + _digits(rng, length - len(prefix) - 1)
    number = body + luhn.calc_check_digit(body)
    sep = rng.choice(["", " ", "-"])
    out, at = [], 0
    for size in groups:
        out.append(number[at : at + size])
        at += size
    return sep.join(out)


def _phone(rng: random.Random) -> str:
    d = lambda n: _digits(rng, n)  # noqa: E731 - a local shorthand
    nz = lambda: str(rng.randint(2, 9))  # noqa: E731 - a digit that may lead a group
    return rng.choice(
        [
            f"({nz()}{d(2)}) {nz()}{d(2)}-{d(4)}", f"{nz()}{d(2)}-555-{d(4)}",
            f"{nz()}{d(2)}.{nz()}{d(2)}.{d(4)}",
            f"+1 {nz()}{d(2)} 555 {d(4)}", f"+1-555-{nz()}{d(2)}-{d(4)}", f"+1555{nz()}{d(6)}",
            f"020 {nz()}{d(3)} {d(4)}", f"07{d(3)} {d(6)}", f"+44 20 {nz()}{d(3)} {d(4)}",
            f"+44 (0)20 {nz()}{d(3)} {d(4)}",
            f"030 {nz()}{d(7)}", f"0171/{nz()}{d(6)}", f"+49 30 {nz()}{d(7)}", f"089 {nz()}{d(6)}",
            f"0151 {d(8)}",
            f"91{d(1)} {d(3)} {d(3)}", f"6{d(2)} {d(2)} {d(2)} {d(2)}", f"+34 6{d(2)} {d(3)} {d(3)}",
            f"(55) {nz()}{d(3)}-{d(4)}", f"55 {nz()}{d(3)} {d(4)}", f"+52 55 {nz()}{d(3)} {d(4)}",
        ]
    )  # fmt: skip


def _iban(rng: random.Random) -> str:
    country, bban_len = rng.choice([("DE", 18), ("GB", 18), ("ES", 20), ("FR", 23), ("NL", 14), ("IT", 23)])
    if country == "GB":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + _digits(rng, 14)
    elif country == "NL":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + _digits(rng, 10)
    elif country == "IT":
        bban = rng.choice(string.ascii_uppercase) + _digits(rng, 10) + _digits(rng, 12)
    else:
        bban = _digits(rng, bban_len)
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(numeric) % 97
    compact = f"{country}{check:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if rng.random() < 0.5 else compact


def _ssn(rng: random.Random) -> str:
    area, group, serial = rng.randint(1, 665), rng.randint(1, 99), rng.randint(1, 9999)
    return f"{area:03d}-{group:02d}-{serial:04d}"


def _ssn_in_context(rng: random.Random) -> str:
    area, group, serial = rng.randint(1, 665), rng.randint(1, 99), rng.randint(1, 9999)
    value = rng.choice([f"{area:03d}{group:02d}{serial:04d}", f"{area:03d} {group:02d} {serial:04d}"])
    return (
        rng.choice(["SSN ", "SSN: ", "ssn#", "Social Security Number: ", "social security number is "])
        + value
    )


def _token(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _secret(rng: random.Random) -> str:
    an = string.ascii_letters + string.digits
    up = string.ascii_uppercase + "234567"
    b64 = an + "/+"
    return rng.choice(
        [
            "AKIA" + _token(rng, up, 16), "ASIA" + _token(rng, up, 16), "github_pat_" + _token(rng,
            an + "_", 82),
            "ghp_" + _token(rng, an, 36), "glpat-" + _token(rng, an + "-_", 20),
            "sk-proj-" + _token(rng, an + "-_", 48),
            "sk-ant-api03-" + _token(rng, an + "-_", 90), "xoxb-" + _digits(rng, 11) + "-" + _token(rng,
            an, 24),
            "AIza" + _token(rng, an + "-_", 35), "sk_live_" + _token(rng, an, 24), "hf_" + _token(rng,
            an, 34),
            "npm_" + _token(rng, an, 36), "aws_secret_access_key = " + _token(rng, b64, 40),
            "eyJhbGciOiJIUzI1NiJ9.eyJ" + _token(rng, an, 40) + "." + _token(rng, an + "-_", 43),
        ]
    )  # fmt: skip


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    text = rng.choice([":".join(groups), f"2001:db8::{groups[0]}", f"fe80::{groups[1]}:{groups[2]}"])
    return text.upper() if rng.random() < 0.5 else text


GENERATORS: dict[Entity, Generator] = {
    Entity.EMAIL: _email,
    Entity.CREDIT_CARD: _card,
    Entity.PHONE: _phone,
    Entity.IBAN: _iban,
    Entity.US_SSN: lambda rng: _ssn(rng) if rng.random() < 0.5 else _ssn_in_context(rng),
    Entity.SECRET: _secret,
    Entity.IP_ADDRESS: _ip,
}

# Contexts: prose in several languages, code, logs, CSV, JSON, mail headers. "{v}" is the value.
CONTEXTS = [
    "Please contact me at {v}.", "My details: {v}, thanks!", "Mi dato es {v}, gracias.", "Meine Angabe: {v}.",
    "Voici: {v} (merci)", "log 2024-11-30T12:34:56Z user=demo value={v} status=ok", "name,value\nJane,{v}\n",
    '{{"value": "{v}", "n": 1}}', "value = '{v}'  # from the config", "Reply-To: Jane <{v}>", "- {v}\n- next",
    "[{v}]", "({v})", "{v}", "x: {v};", "teléfono/phone/Telefon: {v}", "contact:{v}", "<td>{v}</td>",
]  # fmt: skip

NEGATIVES = [
    "Order #A-123456 shipped", "order 12345678 confirmed", "version 1.2.3", "v2.10.1", "release 10.4.0-rc1",
    "2024-11-30T12:34:56Z", "2024-11-30 12:34:56", "30.11.2024", "12:34:56.789", "11/30/2024",
    "sha1 3f786850e387550fdab836ed7e6dc881de23001b", "md5 d41d8cd98f00b204e9800998ecf8427e",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "uuid 123e4567-e89b-12d3-a456-426614174000", "id 550E8400-E29B-41D4-A716-446655440000",
    "total $1,299.99", "PID 12345 exited", "port 8080 open", "line 1234, column 56", "build 20241130.1",
    "ISBN 978-3-16-148410-0", "the answer is 42", "@decorator", "image@2x.png", "3.14159265358979",
    "lat 40.4168, lon -3.7038", "1,234,567 rows", "HTTP/1.1 200 OK", "chmod 0755 file", "2^32 = 4294967296",
    "commit a1b2c3d", "room 4B, floor 12", "invoice INV-2024-000123", "10:30-11:45", "ref 2024/11/30-001",
    "SKU 12-3456-789", "1e-10", "0x7fffffff", "user_id=987654321", "tracking 1Z999AA10123456784",
]  # fmt: skip


def positives(per_type: int = 300, seed: int = 20261130) -> Iterator[tuple[Entity, str, str]]:
    rng = random.Random(seed)
    for entity, generate in GENERATORS.items():
        for _ in range(per_type):
            value = generate(rng)
            yield entity, value, rng.choice(CONTEXTS).format(v=value)


def negatives(seed: int = 20261130) -> Iterator[str]:
    """Each hard negative alone and in a few contexts."""
    rng = random.Random(seed)
    for text in NEGATIVES:
        yield text
        for context in rng.sample(CONTEXTS, 3):
            yield context.format(v=text)
