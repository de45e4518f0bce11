"""Project and rules: the spec's design rules set on the board, and the files KiCad reads
beside it: the .kicad_pro (net classes, rules, rule severities) and the .kicad_dru (custom
rules, from the template in hardware/board/ with the spec's references filled in)."""

from __future__ import annotations

import json
from pathlib import Path

from ..repro import write_text_if_changed
from .layout import Layout, mm


def design_settings(lay: Layout) -> None:
    ds = lay.board.GetDesignSettings()
    r = lay.spec["rules"]
    ds.m_MinClearance = mm(r["min_clearance"])
    ds.m_TrackMinWidth = mm(r["min_track"])
    ds.m_ViasMinSize = mm(r["min_via_diameter"])
    ds.m_MinThroughDrill = mm(r["min_drill"])
    ds.m_ViasMinAnnularWidth = mm(r["min_annular_ring"])
    ds.m_CopperEdgeClearance = mm(r["copper_edge_clearance"])
    ds.m_HoleClearance = mm(r["hole_clearance"])
    ds.m_HoleToHoleMin = mm(r["hole_to_hole"])
    ds.m_SilkClearance = mm(r["silk_clearance"])
    ds.m_SolderMaskMinWidth = 0
    # tented vias: no mask openings for silkscreen to fall into, and what JLCPCB expects
    for attr in ("m_TentViasFront", "m_TentViasBack"):
        if hasattr(ds, attr):
            setattr(ds, attr, True)


def write_project(spec: dict, pro: Path):
    """The .kicad_pro carries the net classes and the board's design rules for KiCad/DRC."""
    r = spec["rules"]
    classes = []
    patterns = []
    for name, c in spec["netclass"].items():
        classes.append({
            "name": name, "clearance": c["clearance"], "track_width": c["track"],
            "via_diameter": c.get("via_diameter", spec["routing"]["via_diameter"]),
            "via_drill": c.get("via_drill", spec["routing"]["via_drill"]),
            "microvia_diameter": 0.3, "microvia_drill": 0.1,
            "diff_pair_width": c["track"], "diff_pair_gap": c.get("pair_gap", 0.2),
            "diff_pair_via_gap": 0.25, "bus_width": 12, "wire_width": 6, "line_style": 0,
            "pcb_color": "rgba(0, 0, 0, 0.000)", "schematic_color": "rgba(0, 0, 0, 0.000)",
            "priority": 2147483647 if name == "Default" else len(classes),
        })
        for pat in c.get("nets", []):
            patterns.append({"netclass": name, "pattern": pat})
    sev = {k: v for k, v in spec.get("severity", {}).items()}
    pro_json = {
        "board": {
            "design_settings": {
                "defaults": {"board_outline_line_width": 0.05, "copper_line_width": 0.2,
                             "silk_line_width": 0.15, "silk_text_size_h": 1.0,
                             "silk_text_size_v": 1.0, "silk_text_thickness": 0.15},
                "rule_severities": sev,
                "rules": {
                    "min_clearance": r["min_clearance"],
                    "min_connection": 0.0,
                    "min_copper_edge_clearance": r["copper_edge_clearance"],
                    "min_hole_clearance": r["hole_clearance"],
                    "min_hole_to_hole": r["hole_to_hole"],
                    "min_microvia_diameter": 0.2, "min_microvia_drill": 0.1,
                    "min_resolved_spokes": 1,
                    "min_silk_clearance": r["silk_clearance"],
                    "min_text_height": r["min_text_height"],
                    "min_text_thickness": r["min_text_thickness"],
                    "min_through_hole_diameter": r["min_drill"],
                    "min_track_width": r["min_track"],
                    "min_via_annular_width": r["min_annular_ring"],
                    "min_via_diameter": r["min_via_diameter"],
                    "solder_mask_to_copper_clearance": 0.0,
                    "use_height_for_length_calcs": True,
                },
                "track_widths": [0.0, 0.2, 0.3, 0.5],
                "via_dimensions": [{"diameter": 0.0, "drill": 0.0},
                                   {"diameter": spec["routing"]["via_diameter"],
                                    "drill": spec["routing"]["via_drill"]}],
                "diff_pair_dimensions": [{"gap": 0.0, "via_gap": 0.0, "width": 0.0}],
                "zones_allow_external_fillets": False,
            },
            "layer_presets": [], "viewports": [],
        },
        "boards": [],
        "libraries": {"pinned_footprint_libs": [], "pinned_symbol_libs": []},
        "meta": {"filename": pro.name, "version": 3},
        "net_settings": {"classes": classes, "meta": {"version": 4},
                         "net_colors": None, "netclass_assignments": None,
                         "netclass_patterns": patterns},
        "pcbnew": {"last_paths": {}, "page_layout_descr_file": ""},
        "schematic": {"legacy_lib_dir": "", "legacy_lib_list": []},
        "sheets": [], "text_variables": {},
    }
    write_text_if_changed(pro, json.dumps(pro_json, indent=2, sort_keys=True) + "\n")


def write_dru(spec: dict, template: Path, path: Path) -> None:
    """The rules template with the spec's references filled in (${usb_connector}, ...)."""
    text = Path(template).read_text()
    for key, val in spec.get("dru", {}).items():
        text = text.replace("${" + key + "}", val)
    write_text_if_changed(path, text)
