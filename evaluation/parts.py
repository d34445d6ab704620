"""The parts a report is made of: its sections, their figures, and the checks against the policy.

Plain data, below both the report builder (evaluation.report, which
re-exports these names) and the HTML rendering (evaluation.render).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from evaluation._common import jsonable

__all__ = ["Check", "Figure", "Section", "Status", "Visibility"]

Visibility = Literal["public", "internal"]
Status = Literal["pass", "warn", "fail", "not_run"]


@dataclass(frozen=True)
class Figure:
    """One image of the report (PNG bytes, inlined into the HTML)."""

    key: str
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Section:
    key: str
    title: str
    visibility: Visibility
    status: Literal["computed", "not_computed", "failed"] = "computed"
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "visibility": self.visibility,
            "status": self.status,
            "reason": self.reason,
            "data": jsonable(_strip_private(self.data)),
            "notes": list(self.notes),
            "figures": [{"key": f.key, "title": f.title, "caption": f.caption} for f in self.figures],
        }


def _strip_private(obj: Any) -> Any:
    """Drop keys starting with '_' (arrays kept for plotting only)."""
    if isinstance(obj, dict):
        return {k: _strip_private(v) for k, v in obj.items() if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(obj, list):
        return [_strip_private(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Check:
    """A headline figure against a threshold of the dataset policy."""

    name: str
    label: str
    value: float | None
    threshold: float | None
    direction: Literal["min", "max"]
    status: Status
    message: str

    @property
    def color(self) -> str:
        return {"pass": "green", "warn": "amber", "fail": "red"}.get(self.status, "grey")

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "name": self.name,
                "label": self.label,
                "value": self.value,
                "threshold": self.threshold,
                "direction": self.direction,
                "status": self.status,
                "color": self.color,
                "message": self.message,
            }
        )
