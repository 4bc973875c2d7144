"""What every config section shares: the strict base model and the small value parsers."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: unknown settings are errors, and a validated section never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def snake_case(name: str) -> str:
    """Segment Engage's audience keys are the snake_cased audience names."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def parse_duration(text: str | int | float) -> float | None:
    """Seconds from `2s`, `500ms`, `15m`, `3h`, or a bare number; None if unreadable."""
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", str(text))
    if not m:
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2) or "s"]
    return float(m.group(1)) * scale
