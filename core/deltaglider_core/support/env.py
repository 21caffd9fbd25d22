"""``DG_*`` switches and their words, read one way everywhere (environment variables, connection extras)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from deltaglider_core.errors import DeltaGliderError

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def parse_flag(text: str) -> bool | None:
    """A switch's value read one way everywhere (environment variables, connection extras): true/false, 1/0,
    yes/no, on/off in any case and with surrounding spaces; None for anything else."""
    word = text.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def env_flag(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    """A ``DG_*`` switch: unset or empty gives ``default``; a value :func:`parse_flag` cannot read is refused
    naming the variable (a typo must not silently mean the opposite)."""
    raw = environ(env).get(name, "")
    if raw.strip() == "":
        return default
    value = parse_flag(raw)
    if value is None:
        raise DeltaGliderError(f"{name}={raw!r} is not a boolean: use true or false (1/0, yes/no, on/off).")
    return value
