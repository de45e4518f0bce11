"""What a sheet is made of (symbols, wires, labels, sheet boxes) and where its ink is.

Every item knows the rectangles it covers on the sheet: the body of a symbol (from its
library graphics), its pins, and each visible text (from the stroke font metrics). The
placement works against these, and the writer turns the items into a .kicad_sch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import font
from .geometry import Rect, Transform, r4, segment_rect
from .library import LibPin, LibSymbol

TEXT = 1.27
WIRE_HALF = 0.0762  # half of KiCad's 6 mil default wire


@dataclass
class Field:
    name: str
    text: str
    x: float = 0.0
    y: float = 0.0
    hidden: bool = False
    vertical: bool = False  # as displayed

    def box(self) -> Rect:
        return Rect(*font.ink_box(self.text, self.x, self.y, TEXT, vertical=self.vertical))


@dataclass
class SymbolItem:
    libsym: LibSymbol
    ref: str
    value: str
    t: Transform
    unit: int = 1
    footprint: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # further fields, hidden
    ref_field: Field | None = None
    value_field: Field | None = None
    key: str = ""  # stable identity for the uuid
    in_bom: bool = True
    on_board: bool = True

    def __post_init__(self):
        if self.ref_field is None:
            self.ref_field = Field("Reference", self.ref, hidden=self.libsym.power)
        if self.value_field is None:
            self.value_field = Field("Value", self.value)
        self.default_fields()

    @property
    def pins(self) -> list[LibPin]:
        return self.libsym.unit_pins(self.unit)

    def pin_point(self, pin: LibPin) -> tuple[float, float]:
        return self.t.apply(pin.x, pin.y)

    def pin_dir(self, pin: LibPin) -> tuple[int, int]:
        """Sheet direction pointing away from the body at this pin."""
        return self.t.direction(*pin.outward)

    def default_fields(self) -> None:
        """Fields where the library puts them (turned with the symbol, read horizontally)."""
        for f in (self.ref_field, self.value_field):
            lx, ly, _a = self.libsym.fields.get(f.name, (0.0, 0.0, 0))
            f.x, f.y = self.t.apply(lx, ly)
            f.vertical = False

    def body(self) -> Rect:
        return self.t.rect(*self.libsym.body)

    def body_rects(self) -> list[Rect]:
        return [self.t.rect(*r) for r in self.libsym.body_rects]

    def pin_rects(self) -> list[Rect]:
        out = []
        for p in self.pins:
            if p.hidden:
                continue
            a = self.t.apply(p.x, p.y)
            ix, iy = p.inner
            out.append(segment_rect(a, self.t.apply(ix, iy), WIRE_HALF))
        return out

    def pin_text_rects(self) -> list[Rect]:
        """Pin names and numbers as KiCad draws them (names inside the body when the symbol
        has a name offset, numbers above the pin line)."""
        out = []
        sym = self.libsym
        for p in self.pins:
            if p.hidden:
                continue
            a = self.t.apply(p.x, p.y)
            inner = self.t.apply(*p.inner)
            dx, dy = self.pin_dir(p)  # outward
            horizontal = dy == 0
            if not sym.pin_names_hidden and p.name not in ("~", ""):
                if sym.pin_name_offset > 0:
                    # inside the body, starting `offset` from the pin's inner end
                    ox = inner[0] - dx * sym.pin_name_offset
                    oy = inner[1] - dy * sym.pin_name_offset
                    if horizontal:
                        hj = "left" if dx < 0 else "right"
                        out.append(Rect(*font.ink_box(p.name, ox, oy, p.name_size, hj)))
                    else:
                        hj = "left" if dy > 0 else "right"  # reads bottom to top
                        out.append(Rect(*font.ink_box(p.name, ox, oy, p.name_size, hj,
                                                      vertical=True)))
                else:
                    out.append(_above_pin_line(p.name, p.name_size, a, inner, horizontal))
            if not sym.pin_numbers_hidden:
                out.append(_above_pin_line(p.number, p.number_size, a, inner, horizontal))
        return out

    def field_rects(self) -> list[Rect]:
        return [f.box() for f in (self.ref_field, self.value_field) if not f.hidden and f.text]


@dataclass
class Wire:
    a: tuple[float, float]
    b: tuple[float, float]
    net: str

    def rect(self) -> Rect:
        return segment_rect(self.a, self.b, WIRE_HALF)


@dataclass
class Junction:
    x: float
    y: float


@dataclass
class NoConnect:
    x: float
    y: float

    def rect(self) -> Rect:
        return Rect(self.x - 0.7, self.y - 0.7, self.x + 0.7, self.y + 0.7)


@dataclass
class Label:
    """A net label. kind: 'local', 'hier' (hierarchical) or 'global'. `dir` is the side the
    text extends to from the connection point: 'right', 'left', 'up' or 'down'."""

    kind: str
    text: str
    x: float
    y: float
    dir: str = "right"
    shape: str = "passive"

    @property
    def angle(self) -> int:
        return {"right": 0, "up": 90, "left": 180, "down": 270}[self.dir]

    def rect(self) -> Rect:
        return Rect(*font.label_box(self.kind, self.text, self.x, self.y, self.dir))


@dataclass
class SheetPin:
    name: str
    x: float
    y: float
    side: str  # left, right, top, bottom: the sheet edge it sits on
    shape: str = "passive"

    def rect(self) -> Rect:
        # the pin's text is drawn inside the sheet box, the shape straddles the edge
        w = font.text_width(self.name, TEXT) + TEXT
        x, y = self.x, self.y
        h = TEXT * 0.75
        if self.side == "left":
            return Rect(x - 0.8, y - h, x + w, y + h)
        if self.side == "right":
            return Rect(x - w, y - h, x + 0.8, y + h)
        if self.side == "top":
            return Rect(x - h, y - 0.8, x + h, y + w)
        return Rect(x - h, y - w, x + h, y + 0.8)


@dataclass
class SheetBox:
    name: str
    file: str
    x: float
    y: float
    w: float
    h: float
    pins: list[SheetPin] = field(default_factory=list)

    def rect(self) -> Rect:
        return Rect(self.x, self.y, self.x + self.w, self.y + self.h)

    def name_rect(self) -> Rect:
        return Rect(*font.ink_box(self.name, self.x, self.y - 0.5, TEXT, "left", "bottom"))

    def file_rect(self) -> Rect:
        return Rect(*font.ink_box(self.file, self.x, self.y + self.h + 0.5, TEXT, "left", "top"))


@dataclass
class Sheet:
    """One .kicad_sch: the items drawn on it and its paper."""

    name: str  # "" for the top sheet
    title: str
    symbols: list[SymbolItem] = field(default_factory=list)
    wires: list[Wire] = field(default_factory=list)
    junctions: list[Junction] = field(default_factory=list)
    no_connects: list[NoConnect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    boxes: list[SheetBox] = field(default_factory=list)
    texts: list[tuple[str, float, float]] = field(default_factory=list)  # notes, left-aligned
    paper: str = "A4"

    def extent(self) -> Rect | None:
        from .geometry import union_all

        rects = []
        for s in self.symbols:
            rects += [s.body()] + s.pin_rects() + s.field_rects()
        rects += [w.rect() for w in self.wires] + [lb.rect() for lb in self.labels]
        for b in self.boxes:
            rects += [b.rect(), b.name_rect(), b.file_rect()]
        rects += [Rect(*font.ink_box(t, x, y, TEXT, "left")) for t, x, y in self.texts]
        return union_all(rects)

    def move(self, dx: float, dy: float) -> None:
        for s in self.symbols:
            s.t = Transform(r4(s.t.x + dx), r4(s.t.y + dy), s.t.rot, s.t.mirror_y)
            for f in (s.ref_field, s.value_field):
                f.x, f.y = r4(f.x + dx), r4(f.y + dy)
        for w in self.wires:
            w.a = (r4(w.a[0] + dx), r4(w.a[1] + dy))
            w.b = (r4(w.b[0] + dx), r4(w.b[1] + dy))
        for j in self.junctions + self.no_connects:
            j.x, j.y = r4(j.x + dx), r4(j.y + dy)
        for lb in self.labels:
            lb.x, lb.y = r4(lb.x + dx), r4(lb.y + dy)
        for b in self.boxes:
            b.x, b.y = r4(b.x + dx), r4(b.y + dy)
            for p in b.pins:
                p.x, p.y = r4(p.x + dx), r4(p.y + dy)
        self.texts = [(t, r4(x + dx), r4(y + dy)) for t, x, y in self.texts]


def _above_pin_line(text: str, size: float, a, inner, horizontal: bool) -> Rect:
    """A pin's text centred over its line, as KiCad draws numbers (and names of symbols
    without a name offset)."""
    mx, my = (a[0] + inner[0]) / 2, (a[1] + inner[1]) / 2
    if horizontal:
        return Rect(*font.ink_box(text, mx, my - 0.254, size, vjust="bottom"))
    return Rect(*font.ink_box(text, mx - 0.254, my, size, vjust="bottom", vertical=True))
