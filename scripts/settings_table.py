"""Print the README's settings tables (gateway, operator) from their settings models, or check them.

python scripts/settings_table.py           # print the tables
python scripts/settings_table.py --check   # exit 1 when a table in README.md differs
python scripts/settings_table.py --write   # rewrite the tables in README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from llm_gateway.settings import Settings
from tenantquota_operator.config import OperatorSettings

README = Path(__file__).resolve().parent.parent / "README.md"
#: Marker name in README.md → the model whose table goes between its start and end markers.
TABLES: dict[str, type[BaseSettings]] = {
    "settings-table": Settings,
    "operator-settings-table": OperatorSettings,
}


def table(model: type[BaseSettings]) -> str:
    rows = ["| name | default | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        value = field.get_default(call_default_factory=True)
        if value is PydanticUndefined:
            default = "*(required)*"
        elif value is None or value in ([], {}):
            default = "*(unset)*"
        elif isinstance(value, bool):
            default = f"`{str(value).lower()}`"
        elif isinstance(value, (list, tuple)):  # written as the setting takes it: comma-separated
            default = "`" + ",".join(str(getattr(item, "value", item)) for item in value) + "`"
        elif isinstance(value, frozenset):  # a set of numbers, in order
            default = "`" + ",".join(map(str, sorted(value))) + "`"
        else:
            default = f"`{value}`"
        rows.append(f"| `{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


def with_tables(text: str) -> str:
    """``text`` with every marked table regenerated (a missing marker pair is an error)."""
    for marker, model in TABLES.items():
        start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        head, found, rest = text.partition(start)
        _, found_end, tail = rest.partition(end)
        if not (found and found_end):
            raise SystemExit(f"README.md has no {start} ... {end} pair")
        text = f"{head}{start}\n{table(model)}\n{end}{tail}"
    return text


def main() -> int:
    text = README.read_text()
    wanted = with_tables(text)
    if "--check" in sys.argv:
        if wanted != text:
            print("README.md settings tables are out of date: run python scripts/settings_table.py --write")
            return 1
        return 0
    if "--write" in sys.argv:
        README.write_text(wanted)
        return 0
    print("\n\n".join(table(model) for model in TABLES.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
