"""The grid router on small synthetic problems: it connects, keeps clearance, says what it
could not route."""

import numpy as np
import pytest

from openmetering import pathsearch as PS
from openmetering import route as R


def rect(cx, cy, w, h):
    return np.array([(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2),
                     (cx - w / 2, cy + h / 2)])


def problem(pads, w=10.0, h=8.0, rules=None, keepout=None, grid=0.05, **kw):
    rows, cols = int(round(h / grid)) + 1, int(round(w / grid)) + 1
    ys = grid * np.arange(rows)[:, None]
    xs = grid * np.arange(cols)[None, :]
    edge = np.minimum(np.minimum(xs, w - xs), np.minimum(ys, h - ys)).astype(np.float32)
    if keepout is not None:
        x0, y0, x1, y1 = keepout
        inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        edge = np.where(inside, 0, edge).astype(np.float32)
    nets = {p.net for p in pads if p.net}
    rules = rules or {n: R.NetRule(width=0.2, min_width=0.2) for n in nets}
    return R.Problem(origin=(0, 0), shape=(rows, cols), h=grid, inside=edge > 0, edge_dist=edge,
                     pads=pads, rules=rules, **kw)


def pad(ref, num, net, x, y, w=0.6, h=0.6, layers=(R.F,)):
    return R.Pad(ref, num, net, layers, rect(x, y, w, h), (x, y))


def seg_dist(p, a, b):
    p, a, b = map(np.asarray, (p, a, b))
    ab = b - a
    t = 0 if not ab.any() else np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0, 1)
    return float(np.linalg.norm(p - (a + t * ab)))


def seg_seg(a, b, c, d):
    # the minimum is at an endpoint unless they cross; crossing is checked by sampling
    ds = [seg_dist(a, c, d), seg_dist(b, c, d), seg_dist(c, a, b), seg_dist(d, a, b)]
    for t in np.linspace(0, 1, 41):
        ds.append(seg_dist(np.asarray(a) + t * (np.asarray(b) - np.asarray(a)), c, d))
    return min(ds)


def min_gap(res, pads):
    """Smallest copper gap between different nets (tracks and vias against each other and pads)."""
    items = [(t.net, t.layer, t.a, t.b, t.width / 2) for t in res.tracks]
    items += [(v.net, L, v.at, v.at, v.diameter / 2) for v in res.vias for L in (R.F, R.B)]
    gaps = [np.inf]
    for i, (n1, l1, a1, b1, r1) in enumerate(items):
        for n2, l2, a2, b2, r2 in items[i + 1:]:
            if n1 != n2 and l1 == l2:
                gaps.append(seg_seg(a1, b1, a2, b2) - r1 - r2)
        for p in pads:
            if p.net != n1 and l1 in p.layers:
                poly = p.polygon
                inside = (poly[:, 0].min() <= a1[0] <= poly[:, 0].max()) and (poly[:, 1].min() <= a1[1] <= poly[:, 1].max())
                d = min(seg_seg(a1, b1, poly[k], poly[(k + 1) % len(poly)]) for k in range(len(poly)))
                gaps.append(-1 if inside else d - r1)
    return min(gaps)


def connected(res, pads, net):
    """Union-find over the net's pads, tracks and vias by touching geometry."""
    nodes = [("pad", p) for p in pads if p.net == net]
    nodes += [("trk", t) for t in res.tracks if t.net == net]
    nodes += [("via", v) for v in res.vias if v.net == net]
    parent = list(range(len(nodes)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def pts(n):
        kind, o = n
        if kind == "pad":
            return [tuple(o.center)], o.layers, o
        if kind == "trk":
            return [o.a, o.b], (o.layer,), None
        return [o.at], (R.F, R.B), None

    def in_pad(pt, p):
        lo, hi = p.polygon.min(axis=0), p.polygon.max(axis=0)
        return lo[0] - 1e-6 <= pt[0] <= hi[0] + 1e-6 and lo[1] - 1e-6 <= pt[1] <= hi[1] + 1e-6

    for i in range(len(nodes)):
        for j in range(i + 1, len(nodes)):
            pi, li, padi = pts(nodes[i])
            pj, lj, padj = pts(nodes[j])
            if not set(li) & set(lj):
                continue
            touch = any(np.allclose(a, b, atol=1e-6) for a in pi for b in pj)
            touch |= padi is not None and any(in_pad(b, padi) for b in pj)
            touch |= padj is not None and any(in_pad(a, padj) for a in pi)
            if touch:
                parent[find(i)] = find(j)
    return len({find(i) for i in range(len(nodes)) if nodes[i][0] == "pad"}) == 1


def test_two_pins_connect_on_one_layer():
    pads = [pad("R1", "1", "A", 2, 4), pad("R2", "1", "A", 8, 4)]
    res = R.route(problem(pads))
    assert res.unrouted == []
    assert res.vias == []
    assert connected(res, pads, "A")


def test_crossing_nets_use_a_via_and_keep_clearance():
    # A runs left-right, B top-bottom: one of them has to change layer
    pads = [pad("R1", "1", "A", 1, 4), pad("R2", "1", "A", 9, 4),
            pad("R3", "1", "B", 5, 1), pad("R4", "1", "B", 5, 7),
            # a wall of C along the middle row forces B across on the other layer
            pad("X1", "1", "C", 5, 4, w=9.2, h=0.4)]
    pads[0] = pad("R1", "1", "A", 0.8, 3)
    pads[1] = pad("R2", "1", "A", 9.2, 3)
    prob = problem(pads, rules={n: R.NetRule(width=0.2, min_width=0.2) for n in "AB"})
    res = R.route(prob)
    assert res.unrouted == []
    assert res.vias, "B must cross the wall on B.Cu"
    assert min_gap(res, pads) >= prob.clearance - 1e-6
    for n in "AB":
        assert connected(res, pads, n), n


def test_fine_pitch_row_fans_out_with_clearance():
    # eight 0.3 mm pads at 0.5 mm pitch (FPC-like) each to its own far pad
    pads = []
    for k in range(8):
        pads.append(pad("J1", str(k + 1), f"N{k}", 3.0 + 0.5 * k, 1.5, w=0.3, h=1.3))
        pads.append(pad("U1", str(k + 1), f"N{k}", 1.0 + 1.2 * k, 6.5, w=0.6, h=0.9))
    prob = problem(pads)
    res = R.route(prob)
    assert res.unrouted == []
    assert min_gap(res, pads) >= prob.clearance - 1e-6
    for k in range(8):
        assert connected(res, pads, f"N{k}")


def test_impossible_connection_is_reported_not_faked():
    # the second pad sits inside a copper-free keep-out ring that no track may cross
    pads = [pad("R1", "1", "A", 2, 4), pad("R2", "1", "A", 8, 4),
            pad("G1", "1", "G", 8, 2.6, w=3, h=0.4), pad("G2", "1", "G", 8, 5.4, w=3, h=0.4),
            pad("G3", "1", "G", 6.6, 4, w=0.4, h=3.2, layers=(R.F, R.B)),
            pad("G4", "1", "G", 9.4, 4, w=0.4, h=3.2, layers=(R.F, R.B))]
    for p in pads[2:4]:
        p.layers = (R.F, R.B)
    prob = problem(pads, rules={"A": R.NetRule(width=0.2, min_width=0.2)})
    res = R.route(prob)
    assert res.unrouted == ["A: R2.1"] or res.unrouted == ["A: R1.1"]


def test_power_net_necks_down_only_where_it_must():
    # P's pad sits between two foreign pads 0.2 mm away: no 0.5 mm track fits there
    pads = [pad("U1", "1", "P", 2, 4, w=0.3, h=1.0), pad("U1", "2", "Q", 2.5, 4, w=0.3, h=1.0),
            pad("U1", "3", "Q", 1.5, 4, w=0.3, h=1.0), pad("C1", "1", "P", 8, 4, w=1.0, h=1.0)]
    prob = problem(pads, rules={"P": R.NetRule(width=0.5, min_width=0.2)})
    res = R.route(prob)
    assert res.unrouted == []
    assert min(t.width for t in res.tracks) < 0.5  # the 0.3 mm pad next to Q cannot take 0.5
    assert min_gap(res, prob.pads) >= prob.clearance - 1e-6


@pytest.mark.parametrize("seed", [1, 2])
def test_random_two_pin_nets_never_violate_clearance(seed):
    rng = np.random.default_rng(seed)
    pads = []
    for k in range(6):
        x1, y1 = rng.uniform(0.8, 9.2), rng.uniform(0.8, 7.2)
        x2, y2 = rng.uniform(0.8, 9.2), rng.uniform(0.8, 7.2)
        pads += [pad(f"A{k}", "1", f"N{k}", round(x1, 2), round(y1, 2)),
                 pad(f"B{k}", "1", f"N{k}", round(x2, 2), round(y2, 2))]
    # drop overlapping pads: the generator would otherwise make impossible boards
    keep = []
    for p in pads:
        if all(np.hypot(*(np.subtract(p.center, q.center))) > 1.2 for q in keep):
            keep.append(p)
    nets = {p.net for p in keep if sum(q.net == p.net for q in keep) == 2}
    keep = [p for p in keep if p.net in nets]
    prob = problem(keep)
    res = R.route(prob)
    assert min_gap(res, keep) >= prob.clearance - 1e-6
    routed = {n for n in nets if not any(u.startswith(n + ":") for u in res.unrouted)}
    for n in routed:
        assert connected(res, keep, n), n


# ---------------------------------------------------------------- the search kernel
# route.lowest_path claims to return skimage.graph.MCP_Geometric's path, tie for tie (so the
# faster kernel leaves every routed board unchanged). Grids of few distinct costs make many
# equal-cost paths, where a different visiting order would show.


def skimage_path(cost, starts, ends):
    from skimage.graph import MCP_Geometric

    mcp = MCP_Geometric(cost, offsets=[tuple(m) for m in PS.MOVES], fully_connected=False)
    costs, _ = mcp.find_costs([tuple(s) for s in starts], ends=[tuple(e) for e in ends],
                              find_all_ends=False)
    ec = costs[tuple(np.asarray(ends).T)]
    k = int(np.argmin(ec))
    if not np.isfinite(ec[k]):
        return []
    return [tuple(int(v) for v in p) for p in mcp.traceback(tuple(ends[k]))]


def kernel_path(cost, starts, ends):
    is_end = np.zeros(cost.shape, dtype=bool)
    is_end[tuple(np.asarray(ends).T)] = True
    return [tuple(p) for p in R.lowest_path(cost, starts, is_end).tolist()]


@pytest.mark.parametrize("seed", range(40))
def test_lowest_path_is_skimage_mcp_geometric_tie_for_tie(seed):
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(4, 70)), int(rng.integers(4, 70))
    levels = np.array([1.0, 1.0, 1.0, 0.6, 60.0, 1.5 / 0.05, np.inf])
    cost = levels[rng.integers(0, len(levels), size=(3, rows, cols))]
    if seed % 4 == 0:
        cost[:] = 1.0  # one cost everywhere: the most ties
    cells = np.argwhere(np.ones(cost.shape, dtype=bool))
    # starts in a random order, duplicates and blocked cells included, as the router gives them
    starts = cells[rng.integers(0, len(cells), size=int(rng.integers(1, 60)))]
    ends = cells[rng.integers(0, len(cells), size=int(rng.integers(1, 40)))]
    assert kernel_path(cost, starts, ends) == skimage_path(cost, starts, ends)


def _walled(rng, shape, walls):
    # a grid whose cells are walls (on any plane) with probability `walls`; the via plane
    # costs 30 a step, as a via does beside tracks at 1
    cost = np.where(rng.random(shape) < walls, np.inf, 1.0)
    cost[1] = np.where(np.isfinite(cost[1]), 30.0, np.inf)
    return cost


def _as_codes(cost, ends):
    # the search's own form of such a grid: codes into a cost table, and the end mask
    codes = np.where(np.isfinite(cost), 0, PS.BLOCKED).astype(np.uint8)
    codes[1][np.isfinite(cost[1])] = 1
    table = np.full(256, np.inf)
    table[:2] = (1.0, 30.0)
    is_end = np.zeros(cost.shape, dtype=bool)
    is_end[tuple(np.asarray(ends).T)] = True
    return codes, table, is_end


@pytest.mark.parametrize("seed", range(30))
def test_the_reachability_shortcut_answers_as_the_flood_would(seed):
    # walls near the percolation threshold: about half the searches have no way through, and
    # the search answers those from a walk from both sides instead of flooding; it must say
    # "no path" exactly when skimage's full flood does, and otherwise still give its path
    rng = np.random.default_rng(1000 + seed)
    rows, cols = int(rng.integers(5, 60)), int(rng.integers(5, 60))
    cost = _walled(rng, (3, rows, cols), 0.42 + 0.1 * (seed % 3))
    cells = np.argwhere(np.ones(cost.shape, dtype=bool))
    starts = cells[rng.integers(0, len(cells), size=int(rng.integers(1, 8)))]
    ends = cells[rng.integers(0, len(cells), size=int(rng.integers(1, 6)))]
    expected = skimage_path(cost, starts, ends)
    codes, table, is_end = _as_codes(cost, ends)
    how = PS._reachable(codes, table, np.asarray(starts, dtype=np.intp), is_end)
    assert (how == PS._MEET) == bool(expected)
    assert kernel_path(cost, starts, ends) == expected


def _labelled_sealed(cost, starts, ends, sides):
    # the reference: scipy's labels of the open cells, linked as the moves link them
    from scipy import ndimage

    links = np.zeros((3, 3, 3), dtype=bool)
    links[tuple((PS.MOVES + 1).T)] = True
    labels = ndimage.label(np.isfinite(cost), structure=links)[0]
    rims = [labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]]
    rim = {int(v) for r, o in zip(rims, sides) if o for v in r.ravel() if v}
    def shut(cells):
        return not {int(labels[tuple(c)]) for c in cells if labels[tuple(c)]} & rim
    return shut(starts) or shut(ends)


@pytest.mark.parametrize("seed", range(40))
def test_a_window_search_is_sealed_only_when_no_larger_window_has_a_path(seed):
    # a window cut from a walled grid: when its search says "sealed", the whole grid has no
    # path either, and it says so exactly when the starts' cells or the ends' cells reach
    # none of the window's sides that the grid goes on beyond
    rng = np.random.default_rng(5000 + seed)
    rows, cols = int(rng.integers(12, 60)), int(rng.integers(12, 60))
    cost = _walled(rng, (3, rows, cols), 0.40 + 0.1 * (seed % 3))
    r0, c0 = int(rng.integers(0, rows // 3)), int(rng.integers(0, cols // 3))
    r1, c1 = int(rng.integers(2 * rows // 3, rows + 1)), int(rng.integers(2 * cols // 3, cols + 1))
    if seed % 2:
        # a wall across the window only, with the starts on one side and the ends on the
        # other: the way round it lies outside the window
        cost = _walled(rng, cost.shape, 0.2)
        cw = (c0 + c1) // 2
        cost[:, r0:r1, cw] = np.inf
    sub = cost[:, r0:r1, c0:c1]
    cells = np.argwhere(np.ones(sub.shape, dtype=bool))
    if seed % 2:
        left, right = cells[cells[:, 2] < cw - c0], cells[cells[:, 2] > cw - c0]
        starts = left[rng.integers(0, len(left), size=int(rng.integers(1, 6)))]
        ends = right[rng.integers(0, len(right), size=int(rng.integers(1, 5)))]
    else:
        starts = cells[rng.integers(0, len(cells), size=int(rng.integers(1, 6)))]
        ends = cells[rng.integers(0, len(cells), size=int(rng.integers(1, 5)))]
    codes, table, is_end = _as_codes(sub, ends)
    sides = (r0 > 0, r1 < rows, c0 > 0, c1 < cols)
    path, sealed = PS.search_window(codes, table, np.asarray(starts, dtype=np.intp), is_end, sides)
    whole = skimage_path(cost, starts + (0, r0, c0), ends + (0, r0, c0))
    assert [tuple(p) for p in path.tolist()] == skimage_path(sub, starts, ends)
    if len(path):
        assert not sealed
    else:
        usable = [s for s in starts if np.isfinite(sub[tuple(s)])]
        reachable_ends = [e for e in ends if np.isfinite(sub[tuple(e)])]
        expect = (not usable or not reachable_ends
                  or _labelled_sealed(sub, usable, reachable_ends, sides))
        assert sealed == expect
        if sealed:
            assert whole == []


def test_lowest_path_agrees_when_the_queue_outgrows_its_first_tree():
    # thousands of equal starts: the kernel's queue grows several levels deep while searching
    rng = np.random.default_rng(7)
    cost = np.where(rng.random((3, 120, 140)) < 0.15, np.inf, 1.0)
    cost[1] = np.where(np.isfinite(cost[1]), 30.0, np.inf)
    cells = np.argwhere(np.isfinite(cost))
    starts = cells[rng.permutation(len(cells))[:5000]]
    ends = np.array([(2, 119, 139), (0, 0, 139)])
    cost[tuple(ends.T)] = 1.0
    path = kernel_path(cost, starts, ends)
    assert path and path == skimage_path(cost, starts, ends)


def _both_kernels(codes, table, starts, is_end):
    # the class kernel's answer and the tree kernel's, each on a fresh padding of the grid
    Z, R_, C = codes.shape
    N = (Z + 1) * (R_ + 2) * (C + 2)
    work = PS._work(codes.shape, 3)
    step, Cp, Zp = PS._padded(codes, is_end, PS.MOVES, work[0], work[1])
    refs = PS._start_refs(np.asarray(starts, dtype=np.intp), Cp, Zp)
    classes = PS._step_classes(table, PS.MOVE_LENGTHS)
    assert classes is not None  # the router's kind of table: the class kernel answers it
    got = PS._search_classes(work[0][:N], work[1][:N], step, Zp, Cp, table, refs, classes)
    assert got is not None
    levels = 3
    while True:
        work = PS._work(codes.shape, levels)
        PS._padded(codes, is_end, PS.MOVES, work[0], work[1])
        tree, fitted = PS._lowest_path(work[0][:N], work[1][:N], step, Zp, Cp, table, refs,
                                       PS.MOVE_LENGTHS, levels, work)
        if fitted:
            return [tuple(p) for p in got[0].tolist()], [tuple(p) for p in tree.tolist()]
        levels += 1


@pytest.mark.parametrize("seed", range(30))
def test_the_class_kernel_visits_as_the_tree_kernel_does_on_the_routers_costs(seed):
    # the router's own table (a track 1, beside a foreign track 60, beside the pair partner
    # 0.6, a via 40, a via beside a track 100) on a walled grid whose via plane is dear, so
    # the queue holds many cells waiting out a via's cost, and many equal costs
    rng = np.random.default_rng(9000 + seed)
    rows, cols = int(rng.integers(6, 80)), int(rng.integers(6, 80))
    codes = rng.choice(np.array([0, 0, 0, 0, 1, 2, PS.BLOCKED], np.uint8), size=(3, rows, cols))
    codes[1] = np.where(codes[1] == PS.BLOCKED, PS.BLOCKED, rng.choice([3, 3, 4], size=(rows, cols)))
    table = np.full(256, np.inf)
    table[:5] = (1.0, 60.0, 0.6, 40.0, 100.0)
    cells = np.argwhere(np.ones(codes.shape, dtype=bool))
    starts = cells[rng.integers(0, len(cells), size=int(rng.integers(1, 50)))]
    ends = cells[rng.integers(0, len(cells), size=int(rng.integers(1, 30)))]
    is_end = np.zeros(codes.shape, dtype=bool)
    is_end[tuple(ends.T)] = True
    got, tree = _both_kernels(codes, table, starts, is_end)
    assert got == tree
    cost = np.where(codes == PS.BLOCKED, np.inf, table[np.minimum(codes, 255)])
    assert got == skimage_path(cost, starts, ends)


def test_the_class_kernel_starts_again_with_more_entries_when_they_run_out(monkeypatch):
    rng = np.random.default_rng(11)
    codes = np.where(rng.random((3, 60, 70)) < 0.1, PS.BLOCKED, 0).astype(np.uint8)
    codes[1][codes[1] == 0] = 3
    table = np.full(256, np.inf)
    table[[0, 3]] = (1.0, 40.0)
    starts, ends = np.array([(0, 0, 0), (2, 30, 0)]), np.array([(2, 59, 69)])
    codes[tuple(ends.T)] = 0
    is_end = np.zeros(codes.shape, dtype=bool)
    is_end[tuple(ends.T)] = True
    calls = []
    kernel = PS._lowest_path_classes
    monkeypatch.setattr(PS, "_lowest_path_classes", lambda *a: calls.append(1) or kernel(*a))
    monkeypatch.setattr(PS, "ENTRIES_PER_CELL", 0.0005)  # 16 entries: far too few
    got, tree = _both_kernels(codes, table, starts, is_end)
    assert len(calls) > 2 and got == tree and got


@pytest.mark.parametrize("levels", [(1.0, 0.0, 30.0), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)])
def test_costs_the_class_kernel_does_not_take_go_to_the_tree(levels):
    # a step that adds nothing (a zero cost) and a seventh cost are not its case: the tree
    # kernel answers them, still as skimage does
    table = np.full(256, np.inf)
    table[: len(levels)] = levels
    assert PS._step_classes(table, PS.MOVE_LENGTHS) is None
    rng = np.random.default_rng(len(levels))
    cost = np.array(levels)[rng.integers(0, len(levels), size=(3, 30, 40))]
    cells = np.argwhere(np.ones(cost.shape, dtype=bool))
    starts = cells[rng.integers(0, len(cells), size=5)]
    ends = cells[rng.integers(0, len(cells), size=4)]
    assert kernel_path(cost, starts, ends) == skimage_path(cost, starts, ends)


def test_lowest_path_reports_no_path_and_rejects_bad_costs():
    cost = np.ones((3, 5, 5))
    cost[:, :, 2] = np.inf  # a wall on every plane
    assert kernel_path(cost, [(0, 2, 0)], [(2, 2, 4)]) == []
    assert kernel_path(cost, [(0, 2, 0)], [(0, 2, 0)]) == [(0, 2, 0)]  # a start that is an end
    with pytest.raises(ValueError):
        R.lowest_path(-cost, [(0, 0, 0)], np.ones(cost.shape, dtype=bool))
    with pytest.raises(ValueError):
        R.lowest_path(cost, [(3, 0, 0)], np.ones(cost.shape, dtype=bool))


def test_bench_times_every_run_and_checks_they_agree():
    pads = [pad("R1", "1", "A", 2, 4), pad("R2", "1", "A", 8, 4),
            pad("R3", "1", "B", 5, 1), pad("R4", "1", "B", 5, 7)]
    out = R.bench(runs=2, problem=problem(pads), log=lambda m: None)
    assert [r["unrouted"] for r in out["runs"]] == [0, 0]
    assert all(r["wall_s"] >= 0 and r["tracks"] > 0 for r in out["runs"])
    assert out["deterministic"] and out["runs"][0]["digest"] == out["runs"][1]["digest"]


def test_fanout_vias_keep_the_fab_hole_spacing_from_each_other():
    # fine-pitch GND pads side by side: each one's nearest via site is beside its neighbour's
    # via (own copper is no obstacle to the search), which a fab's hole-to-hole rule rejects
    pads = [pad("U1", str(i), "GND", 4.0 + 0.5 * i, 4.0, w=0.25, h=1.2) for i in range(3)]
    pads += [pad("U1", "9", "S", 3.5, 4.0, w=0.25, h=1.2), pad("U1", "10", "T", 5.5, 4.0, w=0.25, h=1.2)]
    rules = {"GND": R.NetRule(width=0.3, min_width=0.2, fanout=True)}
    prob = problem(pads, rules=rules, hole_to_hole=0.5)
    res = R.Router(prob).route()
    assert res.unrouted == [], res
    vias = [v.at for v in res.vias if v.net == "GND"]
    close = [(a, b) for i, a in enumerate(vias) for b in vias[i + 1:]
             if np.hypot(a[0] - b[0], a[1] - b[1]) < prob.via_drill + prob.hole_to_hole - 1e-6]
    assert vias and close == [], (vias, close)
