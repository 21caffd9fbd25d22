"""Result types: small frozen dataclasses with a JSON-safe ``to_dict()`` (they become Airflow XCom)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["reference", "delta", "direct", "regular"]


def jsonable(value: Any) -> Any:
    """A JSON-safe copy: datetimes as ISO strings, tuples and sets as lists, recursively."""
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return value


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(asdict(self))  # type: ignore[call-overload]
        return result


@dataclass(frozen=True)
class ObjectInfo(_ToDict):
    """A logical object: what a user uploaded, wherever and however it is stored.

    ``original_size`` and ``sha256`` are None when the listing was made without metadata and the
    object is a delta (LIST alone does not carry them): unknown, never guessed.
    """

    bucket: str
    key: str
    stored_key: str
    kind: Kind
    original_size: int | None
    stored_size: int
    sha256: str | None = None
    last_modified: _dt.datetime | None = None
    ref_key: str | None = None


@dataclass(frozen=True)
class PutResult(_ToDict):
    """One upload. ``stored_size`` counts every byte this upload added, a new reference included."""

    bucket: str
    key: str
    stored_key: str
    kind: Kind
    original_size: int
    stored_size: int
    sha256: str
    ref_key: str | None = None
    reference_created: bool = False
    rebased: bool = False
    delta_ratio: float | None = None
    source_window: int | None = None  # xdelta3 source window of the encode, when the memory budget reduced it

    @property
    def ratio(self) -> float:
        """Stored / original bytes (0.0 for an empty file)."""
        return self.stored_size / self.original_size if self.original_size else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["ratio"] = round(self.ratio, 6)
        return out


@dataclass(frozen=True)
class GetResult(_ToDict):
    """One verified download."""

    bucket: str
    key: str
    stored_key: str
    kind: Kind
    path: str
    size: int
    sha256: str
    verified: bool


@dataclass(frozen=True)
class DeleteResult(_ToDict):
    bucket: str
    key: str
    deleted_keys: tuple[str, ...]
    reference_deleted: bool
