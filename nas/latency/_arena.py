"""The TFLite Micro tensor arena of a .tflite model, predicted from the flatbuffer alone.

TFLite Micro splits its arena in two (what `print_allocations()` reports as head and tail):
- the head holds every activation tensor, placed by the greedy memory planner over the tensors'
  lifetimes. `planned_head_bytes` runs the same algorithm (largest buffer first, each placed in
  the lowest gap among the buffers alive at the same time, 16-byte aligned), so it gives the
  head to the byte rather than the liveness lower bound;
- the tail holds per-tensor and per-operator records and what kernels keep between invocations
  (per-channel requantisation multipliers and shifts, for instance). It is linear in counts that
  the flatbuffer gives (tensors, operators of each type, output channels of the convolutions),
  with coefficients that `nas calibrate` fits on arenas the interpreter measured (`nas.calibration`);
- while it allocates, the interpreter also needs scratch at the head end (records for every
  tensor while planning, per-channel data while a kernel prepares). On tiny models that exceeds
  the final head, and the smallest arena that allocates is tail + that scratch.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import gt, itemgetter, sub
from pathlib import Path
from typing import NamedTuple

from ._flatbuffer import Graph, parse_tflite

__all__ = ["Buffer", "tflm_buffers", "planned_head_bytes", "liveness_bytes", "arena_features", "tail_terms", "tail_value",
           "predict_arena"]

#: TFLite Micro aligns every planned buffer to this many bytes (kBufferAlignment).
ALIGNMENT = 16
#: Operators whose per-output-channel requantisation data is kept in the tail.
_PER_CHANNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
#: Operators whose tail records depend on their shapes (the others' on their count alone).
_TAIL_SHAPED = frozenset((*_PER_CHANNEL_OPS, "BATCH_MATMUL"))


class Buffer(NamedTuple):
    size: int  # bytes, unaligned
    first: int  # index of the operator that writes it (0 for graph inputs)
    last: int  # index of the last operator that reads it (the last operator, for graph outputs)


def tflm_buffers(source: str | Path | bytes | Graph) -> list[Buffer]:
    """Activation tensors of the main subgraph in tensor order, with TFLite Micro's lifetimes, then
    the scratch buffers kernels request for the one step they run (planned with them)."""
    return _buffers(source if isinstance(source, Graph) else parse_tflite(source))


#: Scratch a kernel requests from the planner, in bytes per output element, by (operator, activation type):
#: TRANSPOSE_CONV accumulates in int32 (int64 for int16), MEAN sums in int32 before it requantises.
_SCRATCH = {("TRANSPOSE_CONV", "int8"): 4, ("TRANSPOSE_CONV", "int16"): 8, ("MEAN", "int8"): 4, ("MEAN", "int16"): 4}
_SCRATCH_OPS = frozenset(name for name, _ in _SCRATCH)


def _buffers(graph: Graph) -> list[Buffer]:
    n_ops = len(graph.operators)
    constant, dtypes, elements, nbytes, variable = graph.constant, graph.dtypes, graph.elements, graph.nbytes, graph.variable
    first: dict[int, int] = dict.fromkeys(graph.inputs, 0)
    last: dict[int, int] = {}
    scratch = []
    for step, op in enumerate(graph.operators):
        for j in op[1]:  # inputs (indexing a tuple is the cheaper read)
            if not constant[j]:
                last[j] = step
        for j in op[2]:  # outputs
            if j not in first and not constant[j]:
                first[j] = step
        if op[0] in _SCRATCH_OPS:
            activations = [j for j in op.inputs if not constant[j]]
            per = _SCRATCH.get((op.name, dtypes[activations[0]])) if activations else None
            if per:
                scratch.append(Buffer(per * sum(elements[j] for j in op.outputs), step, step))
    end = max(n_ops - 1, 0)
    for j in graph.outputs:
        last[j] = end
    return [Buffer(nbytes[i], first[i], last.get(i, first[i])) for i in sorted(first) if not variable[i]] + scratch


def liveness_bytes(buffers: list[Buffer]) -> int:
    """Peak bytes of tensors alive at once: the floor any planner reaches."""
    steps = range(max((b.last for b in buffers), default=-1) + 1)
    return max((sum(b.size for b in buffers if b.first <= t <= b.last) for t in steps), default=0)


_OFFSET = itemgetter(0)


def planned_head_bytes(buffers: list[Buffer], by: str = "") -> int:
    """The arena head TFLite Micro's greedy memory planner lays these buffers out in.

    Buffers are placed largest first (equal sizes: the later tensor first, as the planner's
    stable sort of its reversed list leaves them); each goes to the lowest offset where it fits
    between the buffers already placed that are alive at any step of its own lifetime.

    Those buffers are found as pairs alive together (`by="pairs"`) or as regions of the arena
    placed so far (`by="region"`): the same layout at different costs. By default, as pairs where
    buffers live a few steps (convolutional nets, transformers), as regions where they live long
    (an unrolled recurrent net's state tensors: tens of thousands of pairs).
    """
    n = len(buffers)
    sizes = [(size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT for size, _, _ in buffers]
    firsts, lasts = list(map(_FIRST, buffers)), list(map(_LAST, buffers))
    if any(map(gt, firsts, lasts)):  # a buffer lives at least for the step that writes it (a malformed graph's)
        lasts = list(map(max, firsts, lasts))
    # largest first; equal sizes, later buffer first (a stable sort, reversed, keeps the input's order of ties)
    order = sorted(range(n - 1, -1, -1), key=sizes.__getitem__, reverse=True)
    if not by:
        by = "pairs" if sum(map(sub, lasts, firsts)) + n <= _PAIRS_LIFE * n else "region"
    elif by not in ("pairs", "region"):
        raise ValueError(f"by must be 'pairs' or 'region', not {by!r}")
    return (_placed_by_pairs if by == "pairs" else _placed_by_region)(firsts, lasts, sizes, order)


_FIRST, _LAST = itemgetter(1), itemgetter(2)


#: The mean lifetime (steps) up to which finding the buffers alive together pair by pair costs less
#: than scanning regions: timed on the 63 real int8 files of benchmarks/real_models.py, pairs were
#: the cheaper on every convolutional net and transformer (mean lifetimes 1.6-3.9 steps; up to 30%
#: less than regions), regions on the unrolled recurrent nets (8-47 steps; 4x less on a GRU).
_PAIRS_LIFE = 6


def _placed_by_pairs(firsts: list[int], lasts: list[int], sizes: list[int], order: list[int]) -> int:
    """The greedy placement of buffers (first and last steps, aligned sizes, the order they are
    placed in), each checked against the buffers placed before it that share a step with it,
    found by a sweep over first steps."""
    n = len(sizes)
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    # Only buffers alive at the same time constrain each other: for each buffer, those placed
    # before it that share a step with it (a sweep over first steps), in the planner's order.
    earlier: list[list[int]] = [[] for _ in range(n)]
    alive: list[int] = []
    for i in sorted(range(n), key=firsts.__getitem__):
        start, mine = firsts[i], rank[i]
        if alive:
            alive = [j for j in alive if lasts[j] >= start]
            mine_earlier = earlier[i]
            for j in alive:
                if rank[j] < mine:
                    mine_earlier.append(j)
                else:
                    earlier[j].append(i)
        alive.append(i)
    offsets = [0] * n
    top = 0
    at = offsets.__getitem__
    for i in order:
        size = sizes[i]
        offset = 0
        others = earlier[i]
        if others:
            # by offset (ties in any order: the gap test is the same for each, the end is their max)
            for j in sorted(others, key=at) if len(others) > 1 else others:
                other_offset = offsets[j]
                if other_offset - offset >= size:
                    break  # the gap before this buffer is big enough
                end = other_offset + sizes[j]
                if end > offset:
                    offset = end
        offsets[i] = offset
        if offset + size > top:
            top = offset + size
    return top


def _placed_by_region(firsts: list[int], lasts: list[int], sizes: list[int], order: list[int]) -> int:
    """The greedy placement with what is placed held as regions by offset: [offset, end, first step,
    last step, the steps as bits]. Buffers placed at the same offset with the same end share one,
    so a buffer's scan passes each such region once (an unrolled GRU's 855 16-byte state tensors
    share ~100) rather than once per buffer alive with it; only regions taken at one of its own
    steps stand in its way."""
    regions: list[list[int]] = []
    top = 0
    for i in order:
        size, first, last = sizes[i], firsts[i], lasts[i]
        mine = ((1 << (last - first + 1)) - 1) << first
        offset = 0
        for other_offset, other_end, lo, hi, steps in regions:
            if hi < first or lo > last or not steps & mine:
                continue  # never alive with this buffer
            if other_offset - offset >= size:
                break  # the gap before this region is big enough
            if other_end > offset:
                offset = other_end
        end = offset + size
        k = bisect_left(regions, offset, key=_OFFSET)
        for region in regions[k:]:
            if region[0] != offset:
                regions.insert(k, [offset, end, first, last, mine])
                break
            if region[1] == end:
                region[2], region[3], region[4] = min(region[2], first), max(region[3], last), region[4] | mine
                break
            k += 1
        else:
            regions.append([offset, end, first, last, mine])
        if end > top:
            top = end
    return top


def arena_features(source: str | Path | bytes | Graph) -> dict[str, float]:
    """What the arena of a .tflite depends on: its planned head, the counts its tail is linear in
    (`tensors`, `ops`, `op:NAME`, `channels:NAME`, the operand bytes a BATCH_MATMUL keeps transposed), the variable tensors TFLite Micro keeps in the
    tail (`variable_bytes`, counted as they are), and those that size the scratch space the
    interpreter needs while it allocates (`tensors` again, and `init:prepare`)."""
    graph = source if isinstance(source, Graph) else parse_tflite(source)
    row: dict[str, float] = {"head": float(planned_head_bytes(_buffers(graph))),
                             "tensors": float(len(graph.shapes)), "ops": float(len(graph.operators))}
    variable = sum((size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT for size, v in zip(graph.nbytes, graph.variable) if v)
    if variable:
        row["variable_bytes"] = float(variable)
    per_channel = []  # output channels of the per-channel layers, in execution order
    shapes = graph.shapes
    for op in graph.operators:  # the keys in the order the operators first need them (the tail sums them in that order)
        name = op[0]
        key = "op:" + name
        row[key] = row.get(key, 0.0) + 1.0
        if name not in _TAIL_SHAPED:
            continue
        if name == "BATCH_MATMUL" and len(op.inputs) >= 2:
            # the kernel keeps a transposed copy of an operand it reads transposed (the left one
            # under adj_x, the right one unless adj_y) in the tail: a (32, 64) int8 right operand
            # took 2,048 bytes more tail with adj_y false than true (2026-12-03)
            lhs, rhs = op.inputs[0], op.inputs[1]
            moved = (graph.nbytes[lhs] if op.adjoint[0] else 0) + (0 if op.adjoint[1] else graph.nbytes[rhs])
            row["transposed:BATCH_MATMUL"] = row.get("transposed:BATCH_MATMUL", 0.0) + float(moved)
        if name in _PER_CHANNEL_OPS and op.outputs:
            shape = shapes[op.outputs[0]]
            channels = float(shape[-1]) if shape else 1.0
            key = "channels:" + name
            row[key] = row.get(key, 0.0) + channels
            per_channel.append(channels)
    # A layer prepares with per-channel scratch at the head end while the tail holds only what the
    # layers before it kept: what it needs beyond the final tail is its channels less the
    # channels of the per-channel layers after it.
    after, prepare = 0.0, 0.0
    for channels in reversed(per_channel):
        prepare = max(prepare, channels - after)
        after += channels
    row["init:prepare"] = prepare
    return row


def tail_terms(row: dict[str, float]) -> dict[str, float]:
    """The terms of an `arena_features` row the tail is linear in."""
    return {k: v for k, v in row.items() if k not in ("head", "variable_bytes") and not k.startswith("init:")}


def tail_value(row: dict[str, float], tail: dict[str, float]) -> float:
    """The tail a fitted model's coefficients (`tail`) price for a row."""
    return tail.get("const", 0.0) + sum(tail.get(k, 0.0) * v for k, v in tail_terms(row).items())


def predict_arena(row: dict[str, float], fitted: dict) -> int:
    """Arena bytes: the fitted tail plus the planned head, or plus the scratch that allocation
    needs when that is larger. Operators the fit never saw are priced through the per-operator
    and per-tensor terms only."""
    value = tail_value(row, fitted["tail"]) + row.get("variable_bytes", 0.0)  # variables: in the tail byte for byte
    init = max((ln["slope"] * row.get(ln["feature"], 0.0) + ln["const"] for ln in fitted.get("init", [])), default=0.0)
    return round(value + max(row["head"], init))
