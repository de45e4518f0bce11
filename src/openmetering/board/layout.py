"""The board being built: a pcbnew BOARD with the netlist's nets and footprints, in
board-local millimetres (origin at the outline's top-left corner, y down as in KiCad).

Runs only in the frozen-clock child (`openmetering.board.build`), where pcbnew is imported.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import tomllib
from pathlib import Path

from .. import kicad, kicadnet
from ..errors import DesignError
from ..kicadnet import ref_key

UUID_SEED = 0x0D0E
# the pours' UUIDs come from a sequence of their own: however many items routing made (a
# route from scratch, kept routes, a few nets re-routed), the same zones get the same UUIDs
POUR_SEED = 0x0D0F
# netlist fields that pcbnew gives every footprint anyway
STANDARD_FIELDS = ("Footprint", "Datasheet", "Description", "Reference", "Value")


def load_spec(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise DesignError(f"{path}: cannot read the board spec: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise DesignError(f"{path}: not valid TOML: {e}") from None


def mm(v):
    import pcbnew

    return pcbnew.FromMM(float(v))


def point(x, y):
    import pcbnew

    return pcbnew.VECTOR2I(mm(x), mm(y))


_ONE_FOOTPRINT_LIBS: list[Path] = []


def load_footprint(pcbnew, lib: str, name: str):
    """Footprint `name` of KiCad's library `lib`, read from a folder holding that one file:
    pcbnew reads every footprint of a library folder it loads from (Resistor_SMD's
    hundreds, 0.14 s a part), for the one it returns."""
    if not _ONE_FOOTPRINT_LIBS:
        _ONE_FOOTPRINT_LIBS.append(Path(tempfile.mkdtemp(prefix="omd-footprints-")))
        atexit.register(shutil.rmtree, _ONE_FOOTPRINT_LIBS[0], True)
    src = kicad.footprint_lib_dir(lib) / f"{name}.kicad_mod"
    if not src.is_file():
        return None
    folder = _ONE_FOOTPRINT_LIBS[0] / f"{lib}-{name}" / f"{lib}.pretty"
    if not folder.exists():
        folder.mkdir(parents=True)
        shutil.copyfile(src, folder / src.name)
    return pcbnew.FootprintLoad(str(folder), name)


class Layout:
    def __init__(self, netlist: Path, spec: dict):
        import pcbnew

        self.pcbnew = pcbnew
        self.net = kicadnet.read_netlist(netlist)
        self.spec = spec
        b = spec["board"]
        self.ox, self.oy = b["origin"]
        self.w, self.h = b["width"], b["height"]
        pcbnew.KIID.SeedGenerator(UUID_SEED)
        self.board = pcbnew.BOARD()
        self.board.SetCopperLayerCount(2)
        self.fps: dict[str, object] = {}
        self.nets: dict[str, object] = {}
        self.log: list[str] = []

    def P(self, x, y):
        """Board-local mm -> KiCad page coordinates."""
        return point(self.ox + x, self.oy + y)

    def local(self, v) -> tuple[float, float]:
        """KiCad page coordinates -> board-local mm."""
        return self.pcbnew.ToMM(v.x) - self.ox, self.pcbnew.ToMM(v.y) - self.oy

    def pad_xy(self, ref, number):
        for pad in self.fps[ref].Pads():
            if pad.GetNumber() == number:
                return self.local(pad.GetPosition())
        raise DesignError(f"{ref} has no pad {number}")

    def pad_net(self, ref, number):
        for pad in self.fps[ref].Pads():
            if pad.GetNumber() == number:
                return pad.GetNetname()
        return ""

    def add_footprints(self):
        """Every netlist part as its library footprint, with its fields and pad nets; the
        spec's mounting holes, which are not in the circuit."""
        pcbnew = self.pcbnew
        for name in sorted(self.net.nets):
            ni = pcbnew.NETINFO_ITEM(self.board, name)
            self.board.Add(ni)
            self.nets[name] = ni
        pad_nets = self.net.pad_nets()
        for ref in sorted(self.net.parts, key=ref_key):
            part = self.net.parts[ref]
            lib, _, name = part.footprint.partition(":")
            fp = load_footprint(pcbnew, lib, name)
            if fp is None:
                raise DesignError(f"{ref}: footprint {part.footprint} not found in "
                                  f"{kicad.footprint_lib_dir(lib)}")
            fp.SetFPIDAsString(part.footprint)
            fp.SetReference(ref)
            fp.SetValue(part.value)
            for fname in sorted(part.fields):
                if fname in STANDARD_FIELDS:
                    continue
                f = pcbnew.PCB_FIELD(fp, fp.GetNextFieldId(), fname)
                f.SetText(part.fields[fname])
                f.SetVisible(False)  # an LCSC number must never reach the silkscreen
                f.SetLayer(pcbnew.F_Fab)
                fp.AddField(f)
            if part.sheet_uuid_path:
                fp.SetPath(pcbnew.KIID_PATH(part.sheet_uuid_path))
            fp.Reference().SetLayer(pcbnew.F_Fab)
            fp.Value().SetVisible(False)
            # the BOM flag follows the symbol (the netlist carries exclude_from_bom when set),
            # not the library footprint: KiCad's schematic parity compares the two
            fp.SetExcludedFromBOM("exclude_from_bom" in part.fields)
            self.board.Add(fp)
            for pad in fp.Pads():
                key = (ref, pad.GetNumber())
                if key in pad_nets:
                    pad.SetNet(self.nets[pad_nets[key]])
            self.fps[ref] = fp
        for hole in self.spec.get("hole", []):
            if hole["ref"] in self.fps:
                continue
            fp = load_footprint(pcbnew, "MountingHole", hole["footprint"])
            fp.SetReference(hole["ref"])
            fp.SetValue("M3")
            fp.SetBoardOnly(True)  # not in the circuit: parity must not ask for it
            fp.Reference().SetLayer(pcbnew.F_Fab)
            fp.Value().SetVisible(False)
            self.board.Add(fp)
            self.fps[hole["ref"]] = fp

    def save(self, path: Path):
        self.pcbnew.SaveBoard(str(path), self.board)
