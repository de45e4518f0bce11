"""Plane geometry of a sheet: mm, y pointing down (KiCad's schematic axes), 50 mil grid."""

from __future__ import annotations

import math
from dataclasses import dataclass

GRID = 1.27  # KiCad's schematic connection grid (50 mil)


def snap(v: float, step: float = GRID) -> float:
    return round(round(v / step) * step, 4)


def r4(v: float) -> float:
    return round(v + 0.0, 4)


def key(x: float, y: float) -> tuple[int, int]:
    """A point as exact integers (0.1 um), for connectivity comparisons."""
    return round(x * 10000), round(y * 10000)


@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    @staticmethod
    def around(points) -> Rect:
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        return Rect(min(xs), min(ys), max(xs), max(ys))

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    def grow(self, d: float) -> Rect:
        return Rect(self.x0 - d, self.y0 - d, self.x1 + d, self.y1 + d)

    def move(self, dx: float, dy: float) -> Rect:
        return Rect(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def hits(self, o: Rect) -> bool:
        """Interiors intersect (touching edges do not count)."""
        return self.x0 < o.x1 and o.x0 < self.x1 and self.y0 < o.y1 and o.y0 < self.y1

    def gap(self, o: Rect) -> float:
        """Distance between the rectangles (0 when they intersect)."""
        dx = max(o.x0 - self.x1, self.x0 - o.x1, 0.0)
        dy = max(o.y0 - self.y1, self.y0 - o.y1, 0.0)
        return math.hypot(dx, dy)

    def union(self, o: Rect) -> Rect:
        return Rect(min(self.x0, o.x0), min(self.y0, o.y0), max(self.x1, o.x1), max(self.y1, o.y1))

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)


def union_all(rects) -> Rect | None:
    out = None
    for r in rects:
        out = r if out is None else out.union(r)
    return out


@dataclass(frozen=True)
class Transform:
    """Placement of a library symbol: origin, rotation (degrees, counter-clockwise as seen)
    and an optional mirror about the symbol's own y axis (KiCad's `(mirror y)`)."""

    x: float
    y: float
    rot: int = 0
    mirror_y: bool = False

    def apply(self, px: float, py: float) -> tuple[float, float]:
        """Library point (y up) -> sheet point (y down)."""
        if self.mirror_y:
            px = -px
        c, s = _COS_SIN[self.rot % 360]
        rx, ry = px * c - py * s, px * s + py * c
        return r4(self.x + rx), r4(self.y - ry)

    def direction(self, dx: int, dy: int) -> tuple[int, int]:
        """Library unit vector (y up) -> sheet unit vector (y down)."""
        if self.mirror_y:
            dx = -dx
        c, s = _COS_SIN[self.rot % 360]
        return round(dx * c - dy * s), -round(dx * s + dy * c)

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> Rect:
        return Rect.around([self.apply(x0, y0), self.apply(x1, y1)])


_COS_SIN = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}


def segment_rect(a: tuple[float, float], b: tuple[float, float], half: float = 0.0) -> Rect:
    return Rect(min(a[0], b[0]) - half, min(a[1], b[1]) - half,
                max(a[0], b[0]) + half, max(a[1], b[1]) + half)


def on_segment(p, a, b) -> bool:
    """p lies on the axis-parallel segment a-b (ends included)."""
    (px, py), (ax, ay), (bx, by) = key(*p), key(*a), key(*b)
    if ax == bx == px:
        return min(ay, by) <= py <= max(ay, by)
    if ay == by == py:
        return min(ax, bx) <= px <= max(ax, bx)
    return False
