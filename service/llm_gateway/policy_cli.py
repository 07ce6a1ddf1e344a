"""``secure-llm-gateway policy``: tenant policies from the command line, for people and CI pipelines.

- ``policy validate [PATH ...]``: validate policy files (a ``.cedar`` file or a directory of them;
  default ``POLICY_PATH``) against the gateway's schema. Exit 0 when all are valid, 1 with Cedar's
  message otherwise.
- ``policy check --tenant T --model M [--action A] [--context k=v ...] [--policies PATH ...]``: the
  decision the gateway would make, and the policies that determined it. The tenant's attributes and
  the model's upstreams are given as options (``--tier``, ``--group``, ``--namespace``, ``--label``,
  ``--upstream``, ``--upstream-kind``, ``--api-family``), since the CLI reads no live map. Exit 0 for
  allow, 1 for deny.
- ``policy schema``: print the Cedar schema.

Exit status 2: a usage error or an invalid file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_gateway.core.policy.authorizer import Authorizer
from llm_gateway.core.policy.documents import InvalidPolicy, compile_policies
from llm_gateway.core.policy.facts import ModelFacts, RequestContext, TenantFacts
from llm_gateway.core.policy.schema import ACTIONS, CONTEXT_ATTRIBUTES, SCHEMA_TEXT
from llm_gateway.core.token_budget import MAX_TOKENS, OutputLimits
from llm_gateway.policy_files import load_policy_documents

__all__ = ["main"]

_BOOLEANS = {"true": True, "false": False}
#: The integers a request's context can hold (a count of tokens or bytes is capped as the gateway caps it).
_RANGES = {"hour": (0, 23), "max_tokens": (1, MAX_TOKENS)}
_NETWORKS = ("loopback", "private", "public", "unknown")
#: What a context attribute is, when ``--context`` does not set it.
_DEFAULTS: dict[str, Any] = {
    "stream": False,
    "has_tools": False,
    "has_images": False,
    "pii": (),
    "bytes": 0,
    "client_network": "public",
}


def main(argv: Sequence[str]) -> int:
    """Run ``policy`` with ``argv`` (the words after it); the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "schema":
            sys.stdout.write(SCHEMA_TEXT)
            return 0
        paths = args.policies or ([Path(os.environ["POLICY_PATH"])] if os.environ.get("POLICY_PATH") else [])
        if not paths:
            parser.error("name the policies: --policies PATH (or set POLICY_PATH)")
        documents = [document for path in paths for document in load_policy_documents(path)]
        compiled = compile_policies(documents, default_allow=args.default == "allow")
    except (ValueError, InvalidPolicy) as error:
        print(f"invalid: {error}", file=sys.stderr)
        return 1 if args.command == "validate" else 2
    if args.command == "validate":
        policies = len(compiled.ids) - (args.default == "allow")
        files = len(documents)
        print(f"valid: {policies} polic{'ies' if policies != 1 else 'y'} in {files} file{'s' * (files != 1)}")
        return 0
    try:
        context = _context(args.context)
        labels = tuple(sorted(_pairs(args.label, "--label")))
    except ValueError as error:
        parser.error(str(error))
    tenant = TenantFacts(args.tenant, args.tier, frozenset(args.group), args.namespace, labels)
    model = ModelFacts(
        args.model,
        args.api_family,
        tuple(args.upstream or ["default"]),
        frozenset(args.upstream_kind or ["openai"]),
    )
    decision = Authorizer(compiled).decide_uncached(tenant, args.action, model, context)
    print("allow" if decision.allowed else "deny")
    print("determined by: " + (", ".join(decision.policies) or "no policy (nothing permits it)"))
    return 0 if decision.allowed else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secure-llm-gateway policy", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("schema", help="print the Cedar schema")
    validate = commands.add_parser("validate", help="validate policy files against the schema")
    validate.add_argument("policies", nargs="*", type=Path, help="a .cedar file or a directory (POLICY_PATH)")
    check = commands.add_parser("check", help="the decision for one request")
    check.add_argument(
        "--policies", action="append", type=Path, help="a .cedar file or a directory (POLICY_PATH)"
    )
    check.add_argument("--tenant", required=True, help="the tenant id (what its API key names)")
    check.add_argument("--model", required=True)
    check.add_argument("--action", default="chat", choices=ACTIONS)
    check.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"one of {', '.join(CONTEXT_ATTRIBUTES)}",
    )
    check.add_argument("--tier", default="default")
    check.add_argument("--group", action="append", default=[])
    check.add_argument("--namespace")
    check.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    check.add_argument(
        "--upstream", action="append", help="an upstream that may serve the model (default: default)"
    )
    check.add_argument("--upstream-kind", action="append", help="its kind (default: openai)")
    check.add_argument("--api-family", default="openai", choices=("openai", "anthropic"))
    for command in (validate, check):
        command.add_argument(
            "--default", choices=("allow", "deny"), default=os.environ.get("POLICY_DEFAULT", "allow")
        )
    return parser


def _pairs(items: Sequence[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{option} {item!r}: expected NAME=VALUE")
        pairs.append((name, value))
    return pairs


def _context(items: Sequence[str]) -> RequestContext:
    """A request context from ``NAME=VALUE`` items, typed as the schema declares them."""
    values = dict(_DEFAULTS, hour=time.gmtime().tm_hour)
    for name, text in _pairs(items, "--context"):
        if name not in CONTEXT_ATTRIBUTES:
            raise ValueError(f"--context {name}: not a context attribute ({', '.join(CONTEXT_ATTRIBUTES)})")
        values[name] = _typed(name, text)
    payload = {"max_tokens": values["max_tokens"]} if "max_tokens" in values else {}
    if values["has_tools"]:
        payload["tools"] = [{}]
    if values["has_images"]:
        payload["content"] = [{"type": "image"}]
    pii = tuple(values["pii"])
    return RequestContext(
        payload,
        values["bytes"],
        values["stream"],
        OutputLimits(("max_tokens",), None),
        lambda: pii,
        values["hour"],
        lambda: values["client_network"],
    )


def _typed(name: str, text: str) -> Any:
    """``text`` as the context attribute ``name`` holds it; ``ValueError`` for what the gateway would
    never put there."""
    default = _DEFAULTS.get(name, 0)
    if isinstance(default, bool):
        if text.lower() not in _BOOLEANS:
            raise ValueError(f"--context {name}={text}: expected true or false")
        return _BOOLEANS[text.lower()]
    if isinstance(default, tuple):
        return tuple(item for item in text.split(",") if item)
    if isinstance(default, int):
        low, high = _RANGES.get(name, (0, MAX_TOKENS))
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ValueError(f"--context {name}={text}: expected an integer from {low} to {high}")
        return value
    if text not in _NETWORKS:
        raise ValueError(f"--context {name}={text}: expected one of {', '.join(_NETWORKS)}")
    return text
