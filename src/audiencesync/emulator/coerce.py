"""Coercion of scalar Graph parameters that may arrive as strings.

Why: the same parameter reaches the emulator as a native JSON value (JSON
body) or as a string (query, form, multipart; PYSDK json-dumps booleans to
``"true"``/``"false"`` and examples send ``is_value_based="1"``). The model
states its rules on real types and calls these helpers at its edge.
"""

from __future__ import annotations

from typing import Any

from . import errors

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def as_bool(value: Any, name: str, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise errors.invalid_param(f"Param {name} must be a boolean")


def as_int(value: Any, name: str, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise errors.invalid_param(f"Param {name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise errors.invalid_param(f"Param {name} must be an integer")


def as_str(value: Any, name: str, default: str | None = None) -> str | None:
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise errors.invalid_param(f"Param {name} must be a string")
