"""Calibration samples for every operator deployed models use: generated single-operator and small
multi-operator models over a spread of shapes, in every mode, with int8 models taking int8, float
(QUANTIZE / DEQUANTIZE around the graph) or uint8 inputs and outputs, as model-zoo files do.

Each builder (`_op_builders.OP_BUILDERS`) returns a Keras model made around one operator (or a
short pattern of them: a squeeze-and-excite multiply, a detector head's reshape / concatenation /
logistic), drawn from `rng`, with several inputs where the operator takes several activations (ADD,
SUB, CONCATENATION).
`make_op_samples` converts them (`settle` gives them realistic statistics first) and returns
`Sample`s whose source is "operators"; real models built with Keras applications are never among
them, so they stay held out for validation (`benchmarks/any_tflite.py`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import CandidateFailed
from ._op_builders import OP_BUILDERS
from ._sampling import Sample, settle

__all__ = ["OP_BUILDERS", "make_op_samples", "build_op_model", "op_sample_stem"]


def op_sample_stem(op: str) -> str:
    """The start of the names `make_op_samples` gives the models around `op` (a key of OP_BUILDERS):
    op-<operator>, then -<draw> and, in int8, -io<type> (op-sub-broadcast-0-iofloat32)."""
    return "op-" + op.lower().replace("/", "-")


#: The builders before this index draw, in order, from one generator shared by all of them; each
#: one after it from its own (seeded by the seed and its position), so that adding a builder never
#: changes the models of another and one can be built alone.
_SHARED_GENERATOR = 36


def build_op_model(op: str, rng: np.random.Generator):
    """A model around `op` (a key of OP_BUILDERS), with representative inputs (one array per input)."""
    model = OP_BUILDERS[op](rng)
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    xs = [rng.normal(0.5, 0.5, (16, *tuple(int(d) for d in s[1:]))).astype(np.float32) for s in shapes]
    return model, xs


def make_op_samples(per_op: int, modes: tuple[str, ...], seed: int = 0, ops: tuple[str, ...] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[Sample]:
    """`per_op` models around each operator, each converted in every one of `modes`; int8
    conversions cycle their inputs and outputs through int8, float and uint8."""
    from ..candidate import IO_TYPES, convert

    shared = np.random.default_rng(seed)
    names = ops or tuple(OP_BUILDERS)
    samples: list[Sample] = []
    total, done = len(names) * per_op, 0
    order = list(OP_BUILDERS)
    for op in names:
        position = order.index(op)
        rng = shared if position < _SHARED_GENERATOR else np.random.default_rng([seed, position])
        for k in range(per_op):
            model, xs = build_op_model(op, rng)
            settle(model, xs if len(xs) > 1 else xs[0], rng, steps=2)
            for mode in modes:
                io = IO_TYPES[k % len(IO_TYPES)] if mode == "int8" else "int8"
                name = f"{op_sample_stem(op)}-{k}" + (f"-io{io}" if mode == "int8" else "")
                sample = Sample(name, "operators", mode, b"")
                try:
                    sample.tflite = convert(model, mode, xs if len(xs) > 1 else xs[0], io_type=io, batch_size=1)
                except CandidateFailed as exc:
                    sample.reason = exc.reason
                samples.append(sample)
            done += 1
            if progress:
                progress(done, total)
    return samples
