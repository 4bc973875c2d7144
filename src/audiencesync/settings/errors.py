"""Config problems as sentences: `ConfigError`, and the one formatter every section's errors go through.

A sentence names the setting as a dotted path (`conversions.ldu`, `audiences[0] (VIP).forward`)
and the reason; a value never appears in it, so secrets stay out of messages. A validator that
knows which of its settings is wrong (a check across fields) raises `problem(setting, reason)`;
the formatter then names that setting instead of the model that holds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]
"""A setting's place in the file: keys and list indexes, as pydantic's `loc`."""

_PROBLEMS = "config_problems"


class ConfigError(ValueError):
    """A configuration problem; the message names the setting and the reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def problem(setting: str | Loc, reason: str) -> PydanticCustomError:
    """For a validator to raise: `setting` (a field of its model, or a path below it) is wrong."""
    return problems([(setting, reason)])


def problems(found: Iterable[tuple[str | Loc, str]]) -> PydanticCustomError:
    """Several problems from one validator (a cross-section check), each with its own setting."""
    listed = tuple(((s,) if isinstance(s, str) else tuple(s), reason) for s, reason in found)
    text = "; ".join(f"{'.'.join(map(str, loc))}: {reason}" for loc, reason in listed)
    return PydanticCustomError(_PROBLEMS, "{text}", {"problems": listed, "text": text})


def config_problems(source: ValidationError | Iterable[tuple[Loc, str]], doc: Any) -> list[str]:
    """The sentences for a pydantic ValidationError, or for (setting, reason) pairs found elsewhere
    (an unset `${VAR}`), against `doc`, the mapping that was validated (for audience names)."""
    if not isinstance(source, ValidationError):
        return [f"{setting_path(loc, doc)}: {reason}" for loc, reason in source]
    out: list[str] = []
    for err in source.errors():
        loc = tuple(err["loc"])
        if err["type"] == _PROBLEMS:
            out += [f"{setting_path((*loc, *sub), doc)}: {reason}" for sub, reason in err["ctx"]["problems"]]
        else:
            out.append(f"{setting_path(loc, doc)}: {_reason(err)}")
    return out


def _reason(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown setting"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']}".replace("'", "")
    return err["msg"].removeprefix("Value error, ").removeprefix("Input ")


def setting_path(loc: Loc, doc: Any) -> str:
    """`("audiences", 0, "forward")` → `audiences[0] (VIP customers).forward`; `config` for the root."""
    parts: list[str] = []
    node: Any = doc
    for item in loc:
        if isinstance(item, int):
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            label = f"[{item}]" + (f" ({name})" if name else "")
            if parts:
                parts[-1] += label
            else:
                parts.append(label)
            continue
        parts.append(str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "config"
