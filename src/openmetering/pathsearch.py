"""The router's path search: skimage.graph.MCP_Geometric's Dijkstra, compiled with numba.

route.py imports this module when it searches its first path, so that importing the router
(every `board` command does) does not load numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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


@njit(nogil=True, cache=True)
def _padded(codes, is_end, moves, cells, ends):
    # cells in one padded flat array, the layers of a grid cell side by side (a step between
    # layers stays in the cache line), a border of blocked cells instead of bounds tests
    Z, R, C = codes.shape
    Zp = Z + 1  # slot Z is blocked: a step below layer 0 lands in the previous cell's slot Z
    Rp, Cp = R + 2, C + 2
    N = Rp * Cp * Zp
    cell = cells[:N]
    cell[:] = _BLOCKED
    endf = ends[:N]  # read only where the loop below writes it (cells that are not border)
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
    return step, Cp, Zp


@njit(nogil=True, cache=True)
def _start_refs(starts, Cp, Zp):
    out = np.empty(starts.shape[0], np.intp)
    for s in range(starts.shape[0]):
        out[s] = ((starts[s, 1] + 1) * Cp + starts[s, 2] + 1) * Zp + starts[s, 0]
    return out


_MEET, _APART, _SEALED = 0, 1, 2  # what _flood finds


@njit(nogil=True, cache=True)
def _flood(cell, endf, table, start_refs, step, Cp, Zp, R, C, open_sides, sides, queue):
    # Whether the search would reach an end, without its costs: breadth first from the
    # starts and from the ends at once, a cell at a time on each side, until the two meet
    # (_MEET) or a side has nothing left to enter. A search that finds nothing floods all it
    # can reach, the whole board when an end is boxed in; here the boxed-in side runs out
    # after its own few cells. As in the search, a start is popped (and may be an end) but
    # only expands from a cell of finite cost, and only open cells of finite cost are
    # entered; moves link both ways, so either side may walk.
    # A side that runs out without touching a rim beyond which the grid goes on (open_sides:
    # top, bottom, left, right) is shut in, the same cells in any larger window: _SEALED.
    # When both sides touch such a rim, a larger window might join them: _APART. So a side
    # that ran out after touching one leaves the other to run until it runs out or touches
    # one too.
    N = cell.shape[0]
    side = sides[:N]
    side[:] = 0  # 1: reached from a start, 2: from an end
    # the starts' side fills the queue from the front, the ends' from the back: each cell
    # enters once, so the two never overlap
    a_head = a_tail = 0
    b_head = b_tail = N - 1
    for s in range(start_refs.shape[0]):
        ref = start_refs[s]
        if endf[ref]:
            return _MEET
        if side[ref] == 0 and table[cell[ref]] < np.inf:
            side[ref] = 1
            queue[a_tail] = ref
            a_tail += 1
    for r in range(R):
        for c in range(C):
            base = ((r + 1) * Cp + c + 1) * Zp
            for z in range(Zp - 1):
                i = base + z
                if endf[i] and side[i] == 0 and cell[i] < _DONE and table[cell[i]] < np.inf:
                    side[i] = 2
                    queue[b_tail] = i
                    b_tail -= 1
    if a_head == a_tail or b_head == b_tail:
        return _SEALED  # no start or no end a search could use, in any window
    a_out = b_out = False  # a side has touched an open rim
    a_live = b_live = True
    while a_live or b_live:
        for me in (1, 2):
            if me == 1:
                if not a_live:
                    continue
                if a_head == a_tail:
                    if not a_out:
                        return _SEALED
                    a_live = False
                    if b_out or not b_live:
                        return _APART
                    continue
                index = queue[a_head]
                a_head += 1
            else:
                if not b_live:
                    continue
                if b_head == b_tail:
                    if not b_out:
                        return _SEALED
                    b_live = False
                    if a_out or not a_live:
                        return _APART
                    continue
                index = queue[b_head]
                b_head -= 1
            rc = index // Zp
            r = rc // Cp - 1
            c = rc - (r + 1) * Cp - 1
            if ((r == 0 and open_sides[0]) or (r == R - 1 and open_sides[1])
                    or (c == 0 and open_sides[2]) or (c == C - 1 and open_sides[3])):
                if me == 1:
                    a_out = True
                    if not b_live:
                        return _APART
                else:
                    b_out = True
                    if not a_live:
                        return _APART
            for k in range(step.shape[0]):
                ni = index + step[k]
                got = side[ni]
                if got == me:
                    continue
                if got:
                    return _MEET
                q = cell[ni]
                if q >= _DONE or not table[q] < np.inf:
                    continue
                side[ni] = me
                if me == 1:
                    queue[a_tail] = ni
                    a_tail += 1
                else:
                    queue[b_tail] = ni
                    b_tail -= 1
    return _APART  # not reached: each side returns when it runs out


@njit(nogil=True, cache=True, error_model="numpy")
def _lowest_path(cell, endf, step, Zp, Cp, table, start_refs, lengths, levels, work):
    N = cell.shape[0]
    K = step.shape[0]
    cells, ends, backs, slots, trees, leaves, sides, queue = work
    back = backs[:N]  # move that reached a cell (-1: a start), read only where written
    slot = slots[:N]  # a queued cell's leaf in the tree
    slot[:] = -1
    # the queue holds at most 8**levels cells: the caller retries with a deeper tree when the
    # front outgrows it (the visiting order does not depend on the depth)
    off = _tree_offsets(levels)
    tree = trees[: off[levels + 1]]
    tree[:] = np.inf
    refs = leaves[: 1 << (_SH * levels)]  # read only where written
    count = 0
    for s in range(start_refs.shape[0]):
        ref = start_refs[s]
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


def _reachable(codes, table, starts, is_end, open_sides=(False, False, False, False)):
    """_flood's answer for a search on codes (see search_cells): _MEET, _APART or _SEALED."""
    Z, R, C = codes.shape
    N = (Z + 1) * (R + 2) * (C + 2)
    work = _work(codes.shape, 3)
    step, Cp, Zp = _padded(codes, is_end, MOVES, work[0], work[1])
    return _flood(work[0][:N], work[1][:N], table, _start_refs(starts, Cp, Zp), step, Cp, Zp,
                  R, C, np.array(open_sides, np.bool_), work[6], work[7])


def search_window(codes, table, starts, is_end, open_sides=(False, False, False, False)):
    """search_cells in a window of a larger grid whose cells cost there what they cost in
    the window: (path, sealed), sealed True when there is no path and no larger window
    with the same starts and ends would have one either (see _flood)."""
    Z, R, C = codes.shape
    N = (Z + 1) * (R + 2) * (C + 2)
    # a tree of 8**levels leaves, at least one for every 4 cells: this board's widest fronts
    # (up to a tenth of the window) fit without a retry, and a deeper tree costs little
    levels = max(3, math.ceil(math.log(max(codes.size, 1) / 4, _FAN)))
    work = _work(codes.shape, levels)
    step, Cp, Zp = _padded(codes, is_end, MOVES, work[0], work[1])
    refs = _start_refs(starts, Cp, Zp)
    cell, endf = work[0][:N], work[1][:N]
    how = _flood(cell, endf, table, refs, step, Cp, Zp, R, C, np.array(open_sides, np.bool_),
                 work[6], work[7])
    if how != _MEET:
        return np.zeros((0, 3), np.intp), how == _SEALED
    while True:
        path, fitted = _lowest_path(cell, endf, step, Zp, Cp, table, refs, MOVE_LENGTHS,
                                    levels, work)
        if fitted:
            return path, False
        levels += 1  # the search marked cells done: pad them afresh
        work = _work(codes.shape, levels)
        _padded(codes, is_end, MOVES, work[0], work[1])
        cell, endf = work[0][:N], work[1][:N]


_held = [np.zeros(0, t) for t in (np.uint8, np.bool_, np.int8, np.int32, np.float64, np.intp,
                                  np.uint8, np.int32)]


def _work(shape, levels):
    """The search's arrays, kept from one search to the next and grown when a search needs
    more: a whole-board search needs ~150 MB, and fresh pages for every search cost the
    kernel's page faults and zeroing (seconds over a board). Not for two searches at once:
    the router searches one path at a time."""
    Z, R, C = shape
    cells = (Z + 1) * (R + 2) * (C + 2)
    leaves = 1 << (_SH * levels)
    need = [cells] * 4 + [int(_tree_offsets(levels)[levels + 1]), leaves, cells, cells]
    for k, n in enumerate(need):
        if len(_held[k]) < n:
            _held[k] = np.empty(n, _held[k].dtype)
    return tuple(_held)


def search_cells(codes, table, starts, is_end):
    """lowest_path on costs given as codes: uint8 (Z, rows, cols) indices into `table`
    (float64[256]), BLOCKED for cells no path may enter."""
    return search_window(codes, table, starts, is_end)[0]


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
