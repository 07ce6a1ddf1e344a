"""Print the README's settings table from the settings model, or check the README against it.

python scripts/settings_table.py           # print the table
python scripts/settings_table.py --check   # exit 1 when README.md's table differs
python scripts/settings_table.py --write   # rewrite the table in README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

from llm_gateway.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def table() -> str:
    rows = ["| name | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default is PydanticUndefined and field.default_factory is None:
            default = "*(required)*"
        elif field.default is None or field.default_factory is not None:
            default = "*(unset)*"
        elif isinstance(field.default, bool):
            default = f"`{str(field.default).lower()}`"
        else:
            default = f"`{field.default}`"
        rows.append(f"| `{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


def main() -> int:
    text = README.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    wanted = f"{head}{START}\n{table()}\n{END}{tail}"
    if "--check" in sys.argv:
        if wanted != text:
            print("README.md settings table is out of date: run python scripts/settings_table.py --write")
            return 1
        return 0
    if "--write" in sys.argv:
        README.write_text(wanted)
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
