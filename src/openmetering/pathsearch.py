"""The router's path search: skimage.graph.MCP_Geometric's Dijkstra, compiled with numba.

route.py imports this module when it searches its first path, so that importing the router
(every `board` command does) does not load numba.
"""

from __future__ import annotations

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
_FIRST_LEVELS = 3  # the queue's first tree: 512 leaves
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
def _deeper(tree, refs, levels, count):
    # the queue is full: a tree one level deeper, the same leaves in the same places (the
    # visiting order does not depend on the depth, so the search goes on where it was)
    levels += 1
    off = _tree_offsets(levels)
    grown = np.full(off[levels + 1], np.inf)
    grown[:count] = tree[:count]
    n = count
    for lv in range(1, levels + 1):
        n = (n + _FAN - 1) >> _SH
        for j in range(n):
            base = off[lv - 1] + (j << _SH)
            m = grown[base]
            for k in range(1, _FAN):
                x = grown[base + k]
                if x < m:
                    m = x
            grown[off[lv] + j] = m
    more = np.full(1 << (_SH * levels), -1, np.intp)
    more[:count] = refs[:count]
    return grown, more, off, levels


@njit(nogil=True, cache=True)
def _padded(codes, is_end, moves):
    # cells in one padded flat array, the layers of a grid cell side by side (a step between
    # layers stays in the cache line), a border of blocked cells instead of bounds tests
    Z, R, C = codes.shape
    Zp = Z + 1  # slot Z is blocked: a step below layer 0 lands in the previous cell's slot Z
    Rp, Cp = R + 2, C + 2
    N = Rp * Cp * Zp
    cell = np.full(N, _BLOCKED, np.uint8)
    endf = np.zeros(N, np.bool_)
    for z in range(Z):  # in the order codes lie in memory
        for r in range(R):
            base = ((r + 1) * Cp + 1) * Zp + z
            for c in range(C):
                cell[base + c * Zp] = codes[z, r, c]
                endf[base + c * Zp] = is_end[z, r, c]
    K = moves.shape[0]
    step = np.empty(K, np.intp)
    for k in range(K):
        step[k] = (moves[k, 1] * Cp + moves[k, 2]) * Zp + moves[k, 0]
    return cell, endf, step, Cp, Zp


@njit(nogil=True, cache=True)
def _start_refs(starts, Cp, Zp):
    out = np.empty(starts.shape[0], np.intp)
    for s in range(starts.shape[0]):
        out[s] = ((starts[s, 1] + 1) * Cp + starts[s, 2] + 1) * Zp + starts[s, 0]
    return out


@njit(nogil=True, cache=True)
def _flood_reaches(cell, endf, table, start_refs, step):
    # whether the search below would reach an end, without its costs: breadth first from
    # the starts and from the ends at once, a cell at a time on each side, until the two
    # meet or one side has nothing left to enter. A search that finds nothing floods all it
    # can reach, the whole board when the end is boxed in; here the boxed-in side runs out
    # after its own few cells. As in the search, a start is popped (and may be an end) but
    # only expands from a finite cell, and only open finite cells are entered.
    N = cell.shape[0]
    side = np.zeros(N, np.uint8)  # 1: reached from a start, 2: from an end
    queue = np.empty(N, np.int32)  # the starts' side from the front, the ends' from the back
    a_head = a_tail = 0
    b_head = b_tail = N - 1
    for s in range(start_refs.shape[0]):
        ref = start_refs[s]
        if endf[ref]:
            return True
        if side[ref] == 0 and table[cell[ref]] < np.inf:
            side[ref] = 1
            queue[a_tail] = ref
            a_tail += 1
    for i in range(N):
        if endf[i] and side[i] == 0 and cell[i] < _DONE and table[cell[i]] < np.inf:
            side[i] = 2
            queue[b_tail] = i
            b_tail -= 1
    while a_head < a_tail and b_head > b_tail:
        for me in (1, 2):
            if me == 1:
                index = queue[a_head]
                a_head += 1
            else:
                index = queue[b_head]
                b_head -= 1
            for k in range(step.shape[0]):
                ni = index + step[k]
                got = side[ni]
                if got == me:
                    continue
                if got:
                    return True
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
    return False


@njit(nogil=True, cache=True, error_model="numpy")
def _lowest_path(cell, endf, step, Cp, Zp, table, start_refs, lengths, levels):
    N = cell.shape[0]
    K = step.shape[0]
    back = np.full(N, -1, np.int8)  # move that reached a cell (-1: a start)
    slot = np.full(N, -1, np.int32)  # a queued cell's leaf in the tree
    # the queue holds at most 8**levels cells and grows a level when the front outgrows it:
    # a small tree while the front is small, and no whole-window tree to fill up front
    off = _tree_offsets(levels)
    tree = np.full(off[levels + 1], np.inf)
    refs = np.full(1 << (_SH * levels), -1, np.intp)
    count = 0
    for s in range(start_refs.shape[0]):
        ref = start_refs[s]
        back[ref] = -1
        leaf = slot[ref]
        if leaf == -1:
            if count == refs.shape[0]:
                tree, refs, off, levels = _deeper(tree, refs, levels, count)
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
                    tree, refs, off, levels = _deeper(tree, refs, levels, count)
                refs[count] = ni
                slot[ni] = count
                _lower(tree, off, levels, count, total)
                count += 1
                back[ni] = k
    if found < 0:
        return np.zeros((0, 3), np.intp)
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
    return out


def search_cells(codes, table, starts, is_end):
    """lowest_path on costs given as codes: uint8 (Z, rows, cols) indices into `table`
    (float64[256]), BLOCKED for cells no path may enter."""
    cell, endf, step, Cp, Zp = _padded(codes, is_end, MOVES)
    start_refs = _start_refs(starts, Cp, Zp)
    if not _flood_reaches(cell, endf, table, start_refs, step):
        return np.zeros((0, 3), np.intp)
    return _lowest_path(cell, endf, step, Cp, Zp, table, start_refs, MOVE_LENGTHS, _FIRST_LEVELS)


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
