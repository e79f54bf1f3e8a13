"""Reading a .tflite flatbuffer: `parse_tflite` reads the main subgraph's tensors (shape, type,
weights or activation) and operators (builtin name, inputs, outputs, convolution options) in one pass.

Shared by the kernel reader (what the runtime executes) and the arena model (what it allocates)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

__all__ = ["DTYPE_BYTES", "read_tflite", "enum_names", "parse_tflite", "Graph", "Tensor", "Operator"]

#: Bytes per element of each TFLite tensor type, by lower-case type name.
DTYPE_BYTES = {"float32": 4, "float16": 2, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "bool": 1}


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def enum_names(enum) -> dict[int, str]:
    """value -> name of a flatbuffer enum class (BuiltinOperator, TensorType, ...)."""
    return {value: name for name, value in vars(enum).items() if not name.startswith("_")}


def read_tflite(source: str | Path | bytes) -> bytes:
    """The bytes of a .tflite model given as bytes or a path (a clear error when the file is missing)."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return path.read_bytes()


@dataclass(frozen=True)
class Tensor:
    shape: tuple[int, ...]
    dtype: str  # lower-case TensorType name: float32, int8, uint8, int16, ...
    constant: bool  # holds weights (data in the file, or the output of a DEQUANTIZE of such data)
    variable: bool = False  # state kept between invocations (TFLite Micro allocates it persistently)

    @property
    def elements(self) -> int:
        size = 1
        for dim in self.shape:
            size *= max(dim, 1)
        return size

    @property
    def nbytes(self) -> int:
        return DTYPE_BYTES.get(self.dtype, 4) * self.elements


@dataclass(frozen=True)
class Operator:
    name: str  # builtin name, CUSTOM for custom operators
    inputs: tuple[int, ...]  # tensor indices, -1 (optional input left out) dropped
    outputs: tuple[int, ...]
    padding_same: bool = False  # CONV_2D / DEPTHWISE_CONV_2D options
    stride: tuple[int, int] = (1, 1)  # (h, w)
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Graph:
    """The main subgraph of a .tflite, read straight from the flatbuffer's bytes (no per-field
    accessor objects: a 1 MB model reads in well under a millisecond)."""

    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class _Reader:
    """Just what `parse_tflite` needs of the FlatBuffers wire format (little-endian tables with
    vtables). `fields(table)` reads a table's vtable once: the absolute position of each field
    (0 where absent), which the other readers take."""

    def __init__(self, data: bytes):
        self.data = data
        self._u32 = struct.Struct("<I").unpack_from
        self._i32 = struct.Struct("<i").unpack_from
        self._u16 = struct.Struct("<H").unpack_from

    def fields(self, table: int, count: int) -> list[int]:
        vtable = table - self._i32(self.data, table)[0]
        present = min(count, (self._u16(self.data, vtable)[0] - 4) // 2)
        offsets = struct.unpack_from(f"<{present}H", self.data, vtable + 4) if present > 0 else ()
        return [table + o if o else 0 for o in offsets] + [0] * (count - max(present, 0))

    def scalar(self, pos: int, fmt: str, default=0):
        return struct.unpack_from(fmt, self.data, pos)[0] if pos else default

    def table(self, pos: int) -> int:
        return pos + self._u32(self.data, pos)[0] if pos else 0

    def vector(self, pos: int) -> tuple[int, int]:
        """(position of the first element, length) of the vector a field at `pos` points to; (0, 0) when absent."""
        if not pos:
            return 0, 0
        start = pos + self._u32(self.data, pos)[0]
        return start + 4, self._u32(self.data, start)[0]

    def tables(self, pos: int) -> list[int]:
        start, n = self.vector(pos)
        if not n:
            return []
        return [start + 4 * i + o for i, o in enumerate(struct.unpack_from(f"<{n}I", self.data, start))]

    def ints(self, pos: int) -> tuple[int, ...]:
        start, n = self.vector(pos)
        return struct.unpack_from(f"<{n}i", self.data, start) if n else ()


@lru_cache(maxsize=1)
def _enums() -> tuple[dict[int, str], dict[int, str]]:
    schema = _schema()
    return enum_names(schema.BuiltinOperator), {k: v.lower() for k, v in enum_names(schema.TensorType).items()}


_CONV_OPTIONS = {"CONV_2D": (0, 2, 1, 5, 4), "DEPTHWISE_CONV_2D": (0, 2, 1, 6, 5)}  # padding, stride h, w, dilation h, w


def parse_tflite(source: str | Path | bytes) -> Graph:
    """The main subgraph of a .tflite given as bytes or a path (a clear error if it is none)."""
    data = read_tflite(source)
    where = "model" if isinstance(source, (bytes, bytearray)) else str(source)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConfigError(f"{where}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        return _parse(data)
    except ConfigError:
        raise
    except Exception as exc:  # a corrupt flatbuffer: out-of-range offsets, truncated vectors
        raise ConfigError(f"{where}: cannot read the flatbuffer ({type(exc).__name__})") from None


def _parse(data: bytes) -> Graph:
    """One pass over the main subgraph. Weights are the tensors no operator writes that are not
    graph inputs or variables (what TFLite Micro requires to hold data), plus the outputs of a
    DEQUANTIZE of weights (float16 weights, expanded at run time): no buffer needs reading."""
    op_names, type_names = _enums()
    r = _Reader(data)
    unpack = struct.unpack_from
    u32 = struct.Struct("<I").unpack_from
    model = r.fields(u32(data, 0)[0], 5)  # Model: operator_codes 1, subgraphs 2
    codes = []
    for code in r.tables(model[1]):  # OperatorCode: deprecated_builtin_code 0 (int8), builtin_code 3 (int32)
        f = r.fields(code, 4)
        codes.append(op_names.get(max(r.scalar(f[0], "<b"), r.scalar(f[3], "<i")), "CUSTOM"))
    subgraphs = r.tables(model[2])
    if not subgraphs:
        raise ConfigError("the model has no subgraph")
    graph = r.fields(subgraphs[0], 4)  # SubGraph: tensors 0, inputs 1, outputs 2, operators 3
    fields = r.fields
    shapes, types, variable = [], [], []
    for tensor in r.tables(graph[0]):  # Tensor: shape 0, type 1, is_variable 5
        f = fields(tensor, 6)
        if f[0]:
            start = f[0] + u32(data, f[0])[0]
            n = u32(data, start)[0]
            shapes.append(unpack(f"<{n}i", data, start + 4) if n else ())
        else:
            shapes.append(())
        types.append(type_names.get(unpack("<b", data, f[1])[0], "float32") if f[1] else "float32")
        variable.append(bool(f[5]) and unpack("<b", data, f[5])[0] != 0)
    operators = []
    written = set(r.ints(graph[1]))
    for op in r.tables(graph[3]):  # Operator: opcode_index 0, inputs 1, outputs 2, builtin_options 4
        f = fields(op, 5)
        name = codes[u32(data, f[0])[0] if f[0] else 0]
        outputs = r.ints(f[2])
        written.update(outputs)
        if name in _CONV_OPTIONS and f[4]:
            pad, sh, sw, dh, dw = _CONV_OPTIONS[name]
            o = fields(r.table(f[4]), 7)
            operators.append(Operator(name, tuple(j for j in r.ints(f[1]) if j >= 0), outputs,
                                      r.scalar(o[pad], "<b") == 0, (r.scalar(o[sh], "<i"), r.scalar(o[sw], "<i")),
                                      (r.scalar(o[dh], "<i", 1), r.scalar(o[dw], "<i", 1))))
        else:
            operators.append(Operator(name, tuple(j for j in r.ints(f[1]) if j >= 0), outputs))
    constant = [j not in written and not variable[j] for j in range(len(shapes))]
    for op in operators:
        if op.name == "DEQUANTIZE" and op.inputs and all(constant[j] for j in op.inputs):
            for j in op.outputs:
                constant[j] = True
    return Graph(tuple(map(Tensor, shapes, types, constant, variable)), tuple(operators), r.ints(graph[1]),
                 r.ints(graph[2]))
