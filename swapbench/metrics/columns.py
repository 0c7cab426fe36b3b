"""A result column: the name values are stored under, its label, direction and format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    higher_is_better: bool
    percent: bool = False  # 0/1 per pair, shown as a percentage
    decimals: int | None = None  # decimals to show where the table's default does not suit the scale

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"
