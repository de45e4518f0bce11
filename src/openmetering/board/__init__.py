"""The board stage: the circuit's netlist -> a placed, routed, poured KiCad board.

One module per job:
- `layout`     the board being built: pcbnew BOARD, nets and footprints from the netlist
- `placement`  parts where the spec puts them, the rest next to what they connect to
- `outline`    board edge and silkscreen (texts, pin labels, trimming at the edge)
- `zones`      keep-outs, GND pours, stitching vias, zone fill
- `project`    design rules into the board, the .kicad_pro and the .kicad_dru
- `routing`    the adapter to the router (`openmetering.route`): problem in, tracks out
- `build`      the stage: input hash, build in a frozen-clock child, verify
- `render`     PNG renders and SVG plots for the docs
- `facts`      what other stages read back from a board (size, parts, pads)

The spec (hardware/board/placement.toml) holds every number; these modules interpret it.
"""
