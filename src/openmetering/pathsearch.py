"""The router's path search: skimage.graph.MCP_Geometric's Dijkstra, compiled with numba.

route.py imports this module when it searches its first path, so that importing the router
(every `board` command does) does not load numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import ndimage

# The path search is skimage.graph.MCP_Geometric's Dijkstra (find_costs with ends and
# find_all_ends=False, then traceback), reimplemented so that it returns the *same* path, tie for
# tie, only faster. What the same path takes:
#   * the same moves in the same order (MOVES), the same step cost, in the same floating-point
#     order: length * 0.5 * (cost_here + cost_there), added to the cost so far;
#   * the same visiting order among equal costs. skimage's heap keeps its entries in one array
#     (a push appends, a pop moves the last entry into the hole) and pops the entry of lowest
#     cost that sits *leftmost* in that array. The tournament tree below keeps the same array
#     and answers the same question, with 8 children a node instead of 2 (seven levels instead
#     of eighteen for this board's fronts, the children of a node in one cache line);
#   * the same rules: starts pushed at cost 0 in the caller's order, a cell is final when popped,
#     it stops at the first end popped, a cheaper arrival replaces the predecessor.
# What it does not copy: skimage compares each popped cell against the whole list of ends and
# normalises starts one by one in Python, which cost more than the search itself here.
# tests/board/test_route.py checks it against skimage on random grids with many ties.

MOVES = np.array([(0, dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]
                 + [(1, 0, 0), (-1, 0, 0)], dtype=np.intp)
# ^ 8 directions on a plane, then through the via plane (z 0 = F.Cu, 1 = vias, 2 = B.Cu)
MOVE_LENGTHS = np.sqrt(np.sum(MOVES.astype(np.float64) ** 2, axis=1))  # as skimage computes them

# which cells a move links: ndimage.label with this element finds what a search can reach
_LINKS = np.zeros((3, 3, 3), dtype=bool)
_LINKS[tuple((MOVES + 1).T)] = True

_SH = 3  # log2 of the tree's fan-out
_FAN = 1 << _SH
_BLOCKED, _DONE = 255, 254  # cell codes beside the indices into the cost table
BLOCKED = _BLOCKED


@njit(nogil=True, cache=True)
def _tree_offsets(levels):
    # level 0 holds the leaves (8**levels of them), level `levels` the root; one flat array
    off = np.empty(levels + 2, np.intp)
    off[0] = 0
    size = 1 << (_SH * levels)
    for lv in range(levels + 1):
        off[lv + 1] = off[lv] + size
        size >>= _SH
    return off


@njit(nogil=True, cache=True, inline="always")
def _lower(tree, off, levels, pos, value):
    # leaf `pos` drops to `value`: an ancestor changes only while it is larger
    tree[pos] = value
    for lv in range(1, levels + 1):
        pos >>= _SH
        j = off[lv] + pos
        if tree[j] <= value:
            return
        tree[j] = value


@njit(nogil=True, cache=True, inline="always")
def _reset(tree, off, levels, pos, value):
    # leaf `pos` takes any value: ancestors are recomputed from their children
    tree[pos] = value
    for lv in range(1, levels + 1):
        pos >>= _SH
        base = off[lv - 1] + (pos << _SH)
        m = tree[base]
        for k in range(1, _FAN):
            x = tree[base + k]
            if x < m:
                m = x
        j = off[lv] + pos
        if tree[j] == m:
            return
        tree[j] = m


@njit(nogil=True, cache=True, error_model="numpy")
def _lowest_path(codes, table, starts, is_end, moves, lengths, levels):
    Z, R, C = codes.shape
    # cells in one padded flat array, the layers of a grid cell side by side (a step between
    # layers stays in the cache line), a border of blocked cells instead of bounds tests
    Zp = Z + 1  # slot Z is blocked: a step below layer 0 lands in the previous cell's slot Z
    Rp, Cp = R + 2, C + 2
    N = Rp * Cp * Zp
    cell = np.full(N, _BLOCKED, np.uint8)
    endf = np.zeros(N, np.bool_)
    for r in range(R):
        for c in range(C):
            base = ((r + 1) * Cp + c + 1) * Zp
            for z in range(Z):
                cell[base + z] = codes[z, r, c]
                endf[base + z] = is_end[z, r, c]
    K = moves.shape[0]
    step = np.empty(K, np.intp)
    for k in range(K):
        step[k] = (moves[k, 1] * Cp + moves[k, 2]) * Zp + moves[k, 0]
    back = np.full(N, -1, np.int8)  # move that reached a cell (-1: a start)
    slot = np.full(N, -1, np.int32)  # a queued cell's leaf in the tree
    # the queue holds at most 8**levels cells: the caller retries with a deeper tree when the
    # front outgrows it (the visiting order does not depend on the depth)
    off = _tree_offsets(levels)
    tree = np.full(off[levels + 1], np.inf)
    refs = np.full(1 << (_SH * levels), -1, np.intp)
    count = 0
    for s in range(starts.shape[0]):
        ref = ((starts[s, 1] + 1) * Cp + starts[s, 2] + 1) * Zp + starts[s, 0]
        back[ref] = -1
        leaf = slot[ref]
        if leaf == -1:
            if count == refs.shape[0]:
                return np.zeros((0, 3), np.intp), False
            leaf = count
            refs[leaf] = ref
            slot[ref] = leaf
            count += 1
        _lower(tree, off, levels, leaf, 0.0)
    found = -1
    while count:
        # pop the leftmost leaf holding the minimum
        v = tree[off[levels]]
        p = 0
        for lv in range(levels, 0, -1):
            base = off[lv - 1] + (p << _SH)
            k = 0
            while tree[base + k] != v:
                k += 1
            p = (p << _SH) + k
        index = refs[p]
        last = count - 1
        moved, moved_v = refs[last], tree[last]
        _reset(tree, off, levels, last, np.inf)
        if p != last:
            _reset(tree, off, levels, p, moved_v)
            refs[p] = moved
            slot[moved] = p
        slot[index] = -1
        count -= 1
        if endf[index]:
            found = index
            break
        here = table[cell[index]]
        cell[index] = _DONE
        for k in range(K):
            ni = index + step[k]
            q = cell[ni]
            if q >= _DONE:
                continue  # final already, or nothing may enter
            total = v + lengths[k] * 0.5 * (here + table[q])
            if total == np.inf:
                continue
            leaf = slot[ni]
            if leaf != -1:
                if tree[leaf] > total:
                    _lower(tree, off, levels, leaf, total)
                    back[ni] = k
            else:
                if count == refs.shape[0]:
                    return np.zeros((0, 3), np.intp), False
                refs[count] = ni
                slot[ni] = count
                _lower(tree, off, levels, count, total)
                count += 1
                back[ni] = k
    if found < 0:
        return np.zeros((0, 3), np.intp), True
    n = 1
    p = found
    while back[p] != -1:
        p -= step[back[p]]
        n += 1
    out = np.empty((n, 3), np.intp)
    p = found
    for m in range(n - 1, -1, -1):
        rc, z = divmod(p, Zp)
        r, c = divmod(rc, Cp)
        out[m, 0], out[m, 1], out[m, 2] = z, r - 1, c - 1
        if m:
            p -= step[back[p]]
    return out, True


def _reachable(codes, table, starts, is_end):
    """Whether any end lies where the search could get from the starts. A search that finds
    nothing floods everything it can reach first (on this board half the routing time went
    on whole-board floods that failed); labelling the open cells costs a twentieth of that
    and gives the same answer: a start or end in a blocked cell is never entered, a start is
    popped (and may be an end) but only expands into open cells."""
    if is_end[tuple(starts.T)].any():
        return True
    open_ = (codes < _DONE) & np.isfinite(table)[codes]
    labels, _ = ndimage.label(open_, structure=_LINKS)
    reach = np.unique(labels[tuple(starts.T)])
    reach = reach[reach > 0]
    return bool(len(reach)) and bool(np.isin(labels[is_end], reach).any())


def search_cells(codes, table, starts, is_end):
    """lowest_path on costs given as codes: uint8 (Z, rows, cols) indices into `table`
    (float64[256]), BLOCKED for cells no path may enter."""
    if not _reachable(codes, table, starts, is_end):
        return np.zeros((0, 3), np.intp)
    # a tree of 8**levels leaves, at least one for every 4 cells: this board's widest fronts
    # (up to a tenth of the window) fit without a retry, and a deeper tree costs little
    levels = max(3, math.ceil(math.log(max(codes.size, 1) / 4, _FAN)))
    while True:
        path, fitted = _lowest_path(codes, table, starts, is_end, MOVES, MOVE_LENGTHS, levels)
        if fitted:
            return path
        levels += 1


def lowest_path(cost, starts, is_end):
    """Cheapest path from any start to the first end reached, as skimage.graph.MCP_Geometric
    (moves MOVES) finds it: an (n, 3) array of cells from start to end, empty when no end can
    be reached.

    cost: float (Z, rows, cols), the cost of a unit step through each cell (inf: not
    enterable; at most 254 distinct values); starts: (n, 3) cells, whose order decides ties as
    in skimage; is_end: bool mask of cost's shape.
    """
    cost = np.asarray(cost, dtype=np.float64)
    is_end = np.ascontiguousarray(is_end, dtype=np.bool_)
    starts = np.ascontiguousarray(starts, dtype=np.intp).reshape(-1, 3)
    if cost.ndim != 3 or is_end.shape != cost.shape:
        raise ValueError("cost and is_end must be (Z, rows, cols) arrays of one shape")
    if (starts < 0).any() or (starts >= np.array(cost.shape)).any():
        raise ValueError("start cells must lie inside the cost array")
    if np.isnan(cost).any() or (cost < 0).any():
        raise ValueError("step costs must be >= 0 or inf")
    ok = np.isfinite(cost)
    values, inverse = np.unique(cost[ok], return_inverse=True)
    if len(values) > _DONE:
        raise ValueError(f"lowest_path takes at most {_DONE} distinct costs, got {len(values)}")
    codes = np.full(cost.shape, _BLOCKED, dtype=np.uint8)
    codes[ok] = inverse
    table = np.full(256, np.inf)
    table[: len(values)] = values
    if not len(starts):
        return np.zeros((0, 3), np.intp)
    return search_cells(codes, table, starts, is_end)
