"""A provider's settings: declared as `ConfigField` entries, checked by `validate_config`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias


class ConfigError(ValueError):
    """A provider configuration is invalid; ``field`` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


FieldKind: TypeAlias = Literal["str", "secret", "url", "int", "float", "bool"]


@dataclass(frozen=True)
class ConfigField:
    """One setting of a provider. ``secret`` fields are write-only for callers."""

    name: str
    kind: FieldKind = "str"
    required: bool = False
    default: Any = None
    help: str = ""
    max_chars: int = 512

    @property
    def secret(self) -> bool:
        return self.kind == "secret"


def validate_config(fields: Sequence[ConfigField], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``raw`` against ``fields``; return a complete dict (defaults filled in).

    Raises `ConfigError` naming the first bad or unknown field.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("provider_config", "must be an object")
    known = {f.name for f in fields}
    for key in raw:
        if key not in known:
            raise ConfigError(str(key)[:64],
                              f"is not a setting (known: {', '.join(sorted(known))})")
    out: dict[str, Any] = {}
    for f in fields:
        value = raw.get(f.name)
        if value is None or value == "":
            if f.required:
                raise ConfigError(f.name, "is required")
            out[f.name] = f.default
            continue
        out[f.name] = _check_field(f, value)
    return out


def _check_field(f: ConfigField, value: Any) -> Any:
    if f.kind in ("str", "secret", "url"):
        if not isinstance(value, str):
            raise ConfigError(f.name, "must be a string")
        if len(value) > f.max_chars:
            raise ConfigError(f.name, f"must be at most {f.max_chars} characters")
        if f.kind == "url" and not value.startswith(("https://", "http://")):
            raise ConfigError(f.name, "must be an http:// or https:// URL")
        return value
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f.name, "must be true or false")
        return value
    if f.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f.name, "must be an integer")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f.name, "must be a number")
    return float(value)
