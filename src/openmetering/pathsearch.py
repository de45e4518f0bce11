"""The router's path search: skimage.graph.MCP_Geometric's Dijkstra, compiled with numba.

route.py imports this module when it searches its first path, so that importing the router
(every `board` command does) does not load numba.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

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
#
# Two kernels keep that order. _lowest_path keeps skimage's array under a tournament tree and
# answers any cost table. _lowest_path_classes answers the router's tables (a few costs, every
# step dearer than nothing) twice as fast: on this board the search waits on memory, not on
# arithmetic (its queue holds 40-180 thousand cells, most of them via-plane cells waiting out
# a via's cost), so it keeps one 32-bit word per cell instead of four arrays and looks ahead
# (see _lowest_path_classes). search_window takes it where it applies and the tree otherwise.

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


# ---------------------------------------------------------------- the class-queue kernel
#
# The same visiting order as _lowest_path, kept another way. The order is (cost, place in
# skimage's array), lowest first. Two facts make it cheap to keep:
#   * a step adds one of a few costs: lengths[k] * 0.5 * (cost here + cost there), with here
#     and there among the table's few values. Cells arrive in the order of the cost they
#     were popped at, and float addition keeps order, so the arrivals that added the same step
#     cost come in cost order: one FIFO list per step cost (a "class") is sorted for free, and
#     the cheapest cell waiting is at the head of one of them. An arrival that improves a
#     waiting cell adds a new entry; the old one is passed over when it reaches the head
#     (its cell has left the queue, or waits at another cost).
#   * every step costs more than nothing, so while the cells of the lowest cost are popped
#     none joins them. They are popped in array order from a small binary heap of their
#     places. The only place that changes under them is the one a pop empties: the array's
#     last cell moves into it. When that cell is one of them, its new place is the lowest of
#     all (the popped one was), so it is popped next ("pending"), and its old place in the
#     heap is stale (it holds a cell of another cost, or none).
# A cell's word: bits 0-2 its cost code (_P_DONE, _P_BLOCKED), bit 3 an end, bits 4-7 the
# move that reached it (15: a start), bits 8-31 its place in the array + 1 (0: not waiting).
# A step that adds nothing (a zero cost), a queue past 2**24 - 2 cells or a cost table past
# six codes is left to the tree kernel.

_P_DONE, _P_BLOCKED = 6, 7
_P_CODES = 6  # cost codes a word holds
_P_START = 15
_P_CAP = (1 << 24) - 2
_MAX_CLASSES = 64
_FULL, _UNSUITED = 1, 2  # why _lowest_path_classes gave up: out of entries, or not its case


@intrinsic
def _prefetch(typingctx, arr, idx):
    """A hint to fetch arr[idx]'s cache line: LLVM's prefetch (read, keep in all levels)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]],
                                       wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, cache=True, inline="always")
def _fetch_around(wd, j, row, Zp):
    # the three rows of words a pop of cell j reads (its cell and the eight beside it)
    for d in (-row, 0, row):
        _prefetch(wd, j + d - Zp)
        _prefetch(wd, j + d + 2 * Zp - 1)


@njit(nogil=True, cache=True)
def _step_weights(t, lengths):
    # each step's cost as the search adds it, in the same floating-point order
    K, M = lengths.shape[0], t.shape[0]
    w = np.empty((K, M, M))
    for k in range(K):
        for a in range(M):
            for b in range(M):
                w[k, a, b] = lengths[k] * 0.5 * (t[a] + t[b])
    return w


def _step_classes(table, lengths):
    """(weights, class of each weight or -1 where the step may not be taken, number of
    classes), as (K, M, M) arrays for the codes M of `table` the words hold; None when the
    table is not this kernel's case."""
    finite = np.flatnonzero(np.isfinite(table[:_DONE]))
    if not len(finite) or finite.max() >= _P_CODES or table[finite].min() <= 0:
        return None
    M = int(finite.max()) + 1
    w = _step_weights(np.ascontiguousarray(table[:M]), lengths)
    ok = np.isfinite(w)
    uniq, inverse = np.unique(w[ok], return_inverse=True)
    if len(uniq) > _MAX_CLASSES:
        return None
    cls = np.full(w.shape, -1, np.int64)
    cls[ok] = inverse
    return w, cls, len(uniq)


@njit(nogil=True, cache=True)
def _pack(cell, endf, wd):
    for i in range(cell.shape[0]):
        q = cell[i]
        if q == _DONE:
            code = _P_DONE
        elif q >= _P_CODES:
            code = _P_BLOCKED  # a code without a finite cost: nothing enters it
        else:
            code = q
        # an end stays an end when blocked: a start on it is popped, and found, all the same
        wd[i] = np.uint32(code) | (np.uint32(8) if endf[i] else np.uint32(0))


@njit(nogil=True, cache=True, inline="always")
def _heap_pop(heap, hn):
    # the smallest of heap[:hn]; the caller's size drops by one
    x = heap[0]
    hn -= 1
    if hn:
        y = heap[hn]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= hn:
                break
            if c + 1 < hn and heap[c + 1] < heap[c]:
                c += 1
            if heap[c] >= y:
                break
            heap[i] = heap[c]
            i = c
        heap[i] = y
    return x


@njit(nogil=True, cache=True, inline="always")
def _heap_push(heap, hn, x):
    i = hn
    while i:
        par = (i - 1) >> 1
        if heap[par] <= x:
            break
        heap[i] = heap[par]
        i = par
    heap[i] = x


@njit(nogil=True, cache=True, error_model="numpy")
def _lowest_path_classes(wd, step, Zp, Cp, start_refs, wt, wc, ncls, lists):
    """_lowest_path's path on packed words: (path, found, why), why 0 when it answered."""
    K = step.shape[0]
    M = wt.shape[1]
    row = Cp * Zp
    vals, refs, heap, rec_ref, rec_val, rec_next = lists
    none = np.zeros((0, 3), np.intp)
    # list ncls holds the starts; each list is linked through rec_next, oldest first
    head = np.full(ncls + 1, -1, np.int64)
    tail = np.full(ncls + 1, -1, np.int64)
    head_cost = np.full(ncls + 1, np.inf)  # the cost of each list's head entry (inf: empty)
    nrec = 0
    count = 0
    for s in range(start_refs.shape[0]):
        ref = start_refs[s]
        w = np.int64(wd[ref])
        if (w >> 8) == 0:
            refs[count] = ref
            vals[count] = 0.0
            count += 1
            wd[ref] = np.uint32((w & 0x0F) | (_P_START << 4) | (count << 8))
            rec_ref[nrec] = ref
            rec_val[nrec] = 0.0
            rec_next[nrec] = -1
            if tail[ncls] == -1:
                head[ncls] = nrec
                head_cost[ncls] = 0.0
            else:
                rec_next[tail[ncls]] = nrec
            tail[ncls] = nrec
            nrec += 1
    vmin = -1.0
    hn = 0
    pending = -1
    found = -1
    while count:
        p = -1
        if pending != -1:
            p = pending
            pending = -1
        else:
            while hn:
                x = _heap_pop(heap, hn)
                hn -= 1
                if x < count and vals[x] == vmin:
                    p = x
                    break
            if p == -1:
                # the next cost: the cheapest head that is live. Only that list's head is
                # looked up (a stale one is passed over and the lists compared again), so a
                # new cost reads the heads' costs, not every head's cell.
                while True:
                    c = 0
                    for d in range(1, ncls + 1):
                        if head_cost[d] < head_cost[c]:
                            c = d
                    r = head[c]
                    at = (np.int64(wd[rec_ref[r]]) >> 8) - 1
                    if at != -1 and vals[at] == rec_val[r]:
                        break
                    r = rec_next[r]
                    head[c] = r
                    head_cost[c] = rec_val[r] if r != -1 else np.inf
                vmin = head_cost[c]
                for c in range(ncls + 1):
                    if head_cost[c] != vmin:
                        continue
                    r = head[c]
                    while r != -1 and rec_val[r] == vmin:
                        at = (np.int64(wd[rec_ref[r]]) >> 8) - 1
                        if at != -1 and vals[at] == vmin:
                            _heap_push(heap, hn, at)
                            hn += 1
                        r = rec_next[r]
                    head[c] = r
                    head_cost[c] = rec_val[r] if r != -1 else np.inf
                p = _heap_pop(heap, hn)
                hn -= 1
        v = vmin
        index = refs[p]
        last = count - 1
        if hn:
            # the next pop is most likely the heap's top: ask for its words now
            nx = heap[0]
            if nx < count:
                _fetch_around(wd, refs[nx], row, Zp)
            if hn > 2:
                _prefetch(refs, heap[1])
                _prefetch(refs, heap[2])
        if p != last:
            moved = refs[last]
            refs[p] = moved
            wm = np.int64(wd[moved])
            wd[moved] = np.uint32((wm & 0xFF) | ((p + 1) << 8))
            mv = vals[last]
            vals[p] = mv
            if mv == v:
                pending = p
                _fetch_around(wd, moved, row, Zp)
        count -= 1
        w = np.int64(wd[index])
        if w & 8:
            found = index
            break
        here = w & 7
        wd[index] = np.uint32((w & 0xF0) | _P_DONE)
        if here >= M:
            continue  # a start no step may leave (the tree kernel's steps from it cost inf)
        for k in range(K):
            ni = index + step[k]
            w = np.int64(wd[ni])
            q = w & 7
            if q >= M:
                continue  # final already, or nothing may enter
            c = wc[k, here, q]
            if c < 0:
                continue
            total = v + wt[k, here, q]
            at = (w >> 8) - 1
            if at != -1:
                if vals[at] > total:
                    vals[at] = total
                    wd[ni] = np.uint32((w & ~np.int64(0xF0)) | (k << 4))
                else:
                    continue
            else:
                if count == _P_CAP:
                    return none, False, _UNSUITED
                refs[count] = ni
                vals[count] = total
                count += 1
                wd[ni] = np.uint32((w & 0x0F) | (k << 4) | (count << 8))
            if not total > v:
                return none, False, _UNSUITED  # a step that added nothing
            if nrec == rec_ref.shape[0]:
                return none, False, _FULL
            rec_ref[nrec] = ni
            rec_val[nrec] = total
            rec_next[nrec] = -1
            if head[c] == -1:
                head[c] = nrec
                head_cost[c] = total
            else:
                rec_next[tail[c]] = nrec
            tail[c] = nrec
            nrec += 1
    if found < 0:
        return none, True, 0
    n = 1
    p = found
    while True:
        b = (np.int64(wd[p]) >> 4) & 15
        if b == _P_START:
            break
        p -= step[b]
        n += 1
    out = np.empty((n, 3), np.intp)
    p = found
    for m in range(n - 1, -1, -1):
        rc, z = divmod(p, Zp)
        r, c = divmod(rc, Cp)
        out[m, 0], out[m, 1], out[m, 2] = z, r - 1, c - 1
        if m:
            p -= step[(np.int64(wd[p]) >> 4) & 15]
    return out, True, 0


ENTRIES_PER_CELL = 2  # list entries a search starts with; one that needs more starts again
_lists: list = [0, None]  # (cells the lists were made for, their arrays)


def _class_lists(N, entries):
    """The class kernel's arrays for N cells, kept from one search to the next like _work's:
    per place in the queue its cost, cell and heap slot; per list entry its cell, cost and
    next entry (np.empty touches no page, so the spare length costs nothing). 32-bit
    indices: a queue place is below 2**24, and narrower arrays are fewer cache misses."""
    if _lists[0] < N or len(_lists[1][3]) < entries:
        n = max(N, _lists[0])
        e = max(entries, len(_lists[1][3]) if _lists[1] else 0)
        _lists[0], _lists[1] = n, (np.empty(n), np.empty(n, np.int32), np.empty(n, np.int32),
                                   np.empty(e, np.int32), np.empty(e), np.empty(e, np.int32))
    return _lists[1]


def _search_classes(cell, endf, step, Zp, Cp, table, refs, classes):
    """The class kernel's (path, found), or None when it gave up (see _lowest_path_classes).
    It reads cell and endf and leaves them as they were, for the tree kernel after it."""
    wt, wc, ncls = classes
    N = cell.shape[0]
    entries = max(16, int(ENTRIES_PER_CELL * N))
    while True:
        wd = _words(N)
        _pack(cell, endf, wd)
        vals, places, heap, cells, costs, nexts = _class_lists(N, entries)
        path, found, why = _lowest_path_classes(
            wd, step, Zp, Cp, refs, wt, wc, ncls,
            (vals, places, heap, cells[:entries], costs[:entries], nexts[:entries]))
        if not why:
            return path, found
        if why != _FULL:
            return None
        entries *= 2


_words_held = [np.zeros(0, np.uint32)]


def _words(N):
    if len(_words_held[0]) < N:
        _words_held[0] = np.empty(N, np.uint32)
    return _words_held[0][:N]


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
    classes = _step_classes(table, MOVE_LENGTHS)
    if classes is not None:
        got = _search_classes(cell, endf, step, Zp, Cp, table, refs, classes)
        if got is not None:
            return got[0], False
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
