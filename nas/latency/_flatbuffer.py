"""Reading a .tflite flatbuffer: `parse_tflite` reads the main subgraph's tensors (shape, type,
weights or activation) and operators (builtin name, inputs, outputs, convolution options) in one pass.

Shared by the kernel reader (what the runtime executes) and the arena model (what it allocates)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import NamedTuple

from ..errors import ConfigError

__all__ = ["DTYPE_BYTES", "read_tflite", "enum_names", "parse_tflite", "Graph", "Tensor", "Operator"]

#: Bytes per element of each TFLite tensor type, by lower-case type name.
DTYPE_BYTES = {"float32": 4, "float16": 2, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "bool": 1}
_INTS = [struct.Struct(f"<{n}i").unpack_from for n in range(17)]


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


class Tensor(NamedTuple):
    """One tensor of the subgraph; `elements` and `nbytes` are worked out once, as it is read."""

    shape: tuple[int, ...]
    dtype: str  # lower-case TensorType name: float32, int8, uint8, int16, ...
    constant: bool  # holds weights (data in the file, or the output of a DEQUANTIZE of such data)
    variable: bool = False  # state kept between invocations (TFLite Micro allocates it persistently)
    elements: int = 1  # product of the dimensions (a 0 or -1 dimension counts as 1)
    nbytes: int = 4  # elements x bytes per element


class Operator(NamedTuple):
    name: str  # builtin name, CUSTOM for custom operators
    inputs: tuple[int, ...]  # tensor indices, -1 (optional input left out) dropped
    outputs: tuple[int, ...]
    padding_same: bool = False  # CONV_2D / DEPTHWISE_CONV_2D / TRANSPOSE_CONV options
    stride: tuple[int, int] = (1, 1)  # (h, w)
    dilation: tuple[int, int] = (1, 1)
    axis: int = 0  # CONCATENATION's axis (negative: from the end)
    adjoint: tuple[bool, bool] = (False, False)  # BATCH_MATMUL's adj_x, adj_y (an operand read transposed)
    rhs_zero: bool = False  # BATCH_MATMUL: its right operand is quantized with zero point 0


@dataclass(frozen=True)
class Graph:
    """The main subgraph of a .tflite, read straight from the flatbuffer's bytes (no per-field
    accessor objects: a 1 MB model reads in a fraction of a millisecond). Tensors are held as
    columns, one sequence per property indexed by tensor; `tensors` gives them as records."""

    shapes: list[tuple[int, ...]]
    dtypes: list[str]  # lower-case TensorType names: float32, int8, uint8, int16, ...
    constant: list[bool]  # weights (data in the file, or the output of a DEQUANTIZE of such data)
    variable: list[bool]  # state kept between invocations (TFLite Micro allocates it persistently)
    elements: list[int]  # product of the dimensions (a 0 or -1 dimension counts as 1)
    nbytes: list[int]  # elements x bytes per element
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    #: the file's bytes and where each tensor's quantization field is (0: none): what `scales` reads
    data: bytes = field(default=b"", repr=False, compare=False)
    quantization_at: object = field(default=None, repr=False, compare=False)

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(map(Tensor, self.shapes, self.dtypes, self.constant, self.variable, self.elements, self.nbytes))

    @cached_property
    def scales(self):
        """Each tensor's (first) quantization scale, 0.0 where it has none, as a numpy array: read on
        first use (only the checks of what a runtime's kernels accept need it), for all tensors at once."""
        import numpy as np

        if self.quantization_at is None:
            return np.zeros(len(self.shapes))
        try:
            return _first_scales(self.data, self.quantization_at)
        except Exception as exc:  # a corrupt quantization table: out-of-range or misaligned offsets
            raise ConfigError(f"cannot read the flatbuffer's quantization ({type(exc).__name__})") from None

    def scale(self, j: int) -> float:
        """Tensor `j`'s (first) quantization scale, 0.0 where it has none, read alone (cheaper than
        `scales` for a few tensors)."""
        if "scales" in self.__dict__ or self.quantization_at is None:
            return float(self.scales[j])
        try:
            return _first_scale(self.data, int(self.quantization_at[j]))
        except Exception as exc:
            raise ConfigError(f"cannot read the flatbuffer's quantization ({type(exc).__name__})") from None


class _Reader:
    """Just what `parse_tflite` needs of the FlatBuffers wire format (little-endian tables with
    vtables). `fields(table)` gives the absolute position of each of a table's first fields (0
    where absent); `offsets` reads a vtable once however many tables share it."""

    def __init__(self, data: bytes):
        self.data = data
        self._u32 = struct.Struct("<I").unpack_from
        self._i32 = struct.Struct("<i").unpack_from
        self._u16 = struct.Struct("<H").unpack_from
        self._vtables: dict[tuple[int, int], tuple[int, ...]] = {}

    def offsets(self, table: int, count: int) -> tuple[int, ...]:
        """The offsets (relative to the table, 0 where absent) of a table's first `count` fields."""
        vtable = table - self._i32(self.data, table)[0]
        cached = self._vtables.get((vtable, count))
        if cached is None:
            present = min(count, (self._u16(self.data, vtable)[0] - 4) // 2)
            found = struct.unpack_from(f"<{present}H", self.data, vtable + 4) if present > 0 else ()
            cached = self._vtables[(vtable, count)] = tuple(found) + (0,) * (count - max(present, 0))
        return cached

    def fields(self, table: int, count: int) -> list[int]:
        return [table + o if o else 0 for o in self.offsets(table, count)]

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
        """The int32 vector a field at `pos` points to (empty when absent)."""
        start, n = self.vector(pos)
        if not n:
            return ()
        return (_INTS[n] if n < len(_INTS) else struct.Struct(f"<{n}i").unpack_from)(self.data, start)

    def options(self, table: int, offset: int, count: int) -> tuple[int, tuple[int, ...]]:
        """The sub-table a table's field at `offset` points to (an operator's builtin options):
        its position and the offsets of its first `count` fields."""
        at = table + offset
        at += self._u32(self.data, at)[0]
        return at, self.offsets(at, count)


@lru_cache(maxsize=1)
def _enums() -> tuple[dict[int, str], dict[int, str]]:
    schema = _schema()
    return enum_names(schema.BuiltinOperator), {k: v.lower() for k, v in enum_names(schema.TensorType).items()}


#: Fields of the options table: padding, stride h, w, dilation h, w (TransposeConvOptions has no
#: dilation: fields 5 and 6 are absent there, read as 1).
_CONV_OPTIONS = {"CONV_2D": (0, 2, 1, 5, 4), "DEPTHWISE_CONV_2D": (0, 2, 1, 6, 5), "TRANSPOSE_CONV": (0, 2, 1, 5, 6)}


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


def _table_fields(reader: _Reader, vector: tuple[int, int], count: int):
    """For a vector of tables (tensors, operators): an int32 view of the buffer, each table's position
    and the offsets of its first `count` fields (0 where absent), read once per distinct vtable (a
    model has a few). FlatBuffers aligns every table and scalar; a file that is not aligned is refused
    as corrupt rather than misread."""
    import numpy as np

    data = reader.data
    start, n = vector
    if start & 3:
        raise ValueError("misaligned table vector")
    i4 = np.frombuffer(data, "<i4", len(data) // 4)
    p = np.arange(start, start + 4 * n, 4, dtype=np.int64) + i4[start >> 2:(start >> 2) + n]
    vtable = p - i4[p >> 2]
    if ((p & 3) | (vtable & 1)).any() or vtable.min() < 0:
        raise ValueError("misaligned table")
    _, first_of, which = np.unique(vtable, return_index=True, return_inverse=True)
    where = np.array([reader.offsets(int(p[i]), count) for i in first_of], np.int64)[which.reshape(-1)]
    return i4, p, where


def _tensor_columns(reader: _Reader, vector: tuple[int, int]):
    """Shape, type, is_variable, elements and bytes of every Tensor table, and where its quantization
    field is (fields: shape 0, type 1, quantization 4, is_variable 5), read for all tensors at once
    with numpy over an int32 view of the buffer (FlatBuffers aligns every scalar to its size; a file
    that is not aligned is refused as corrupt rather than misread): the Python work left is a tuple
    per shape."""
    import numpy as np

    data = reader.data
    count = vector[1]
    if not count:
        return [], [], [], [], [], np.zeros(0, np.int64)
    i4, p, where = _table_fields(reader, vector, 6)
    o_shape, o_type, o_quantization, o_var = where[:, [0, 1, 4, 5]].T
    has = o_shape > 0
    shapes, dims, n = _int_vectors(i4, np.where(has, p + o_shape, 0), has, arrays=True)
    elements = np.ones(count, np.int64)
    nonempty = n > 0
    if len(dims):
        elements[nonempty] = np.multiply.reduceat(np.maximum(dims, 1).astype(np.int64), (np.cumsum(n) - n)[nonempty])
    u8 = np.frombuffer(data, np.uint8)
    codes = np.where(o_type > 0, u8[p + o_type], 0)  # uint8 TensorType codes: names and sizes looked up by table
    names, sizes = _type_tables()
    variable = (np.where(o_var > 0, u8[p + o_var], 0) != 0).tolist()
    return (shapes, list(map(names.__getitem__, codes.tolist())), variable, elements.tolist(), (sizes[codes] * elements).tolist(),
            np.where(o_quantization > 0, p + o_quantization, 0))


_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_F32 = struct.Struct("<f").unpack_from


def _first_scale(data: bytes, at: int) -> float:
    """`_first_scales` for one tensor, in Python: its quantization field's position (0: none)."""
    if not at:
        return 0.0
    table = at + _I32(data, at)[0]
    vtable = table - _I32(data, table)[0]
    if (at | table) & 3 or vtable & 1 or min(table, vtable) < 0:  # refused as `_first_scales` refuses them
        raise ValueError("misaligned quantization")
    o_scale = _U16(data, vtable + 8)[0] if _U16(data, vtable)[0] > 8 else 0
    if not o_scale:
        return 0.0
    start = table + o_scale + _I32(data, table + o_scale)[0]
    if start & 3 or start < 0:
        raise ValueError("misaligned scale vector")
    return _F32(data, start + 4)[0] if _I32(data, start)[0] > 0 else 0.0


def _first_scales(data: bytes, at):
    """The first scale of each tensor's quantization (QuantizationParameters: scale 2, a float32
    vector), 0.0 where there is none, from the positions of the tensors' quantization fields (`at`:
    0 where absent; `_tensor_columns` finds them), with numpy over the buffer."""
    import numpy as np

    scales = np.zeros(len(at))
    has = at > 0
    at = at[has]
    if not len(at):
        return scales
    i4 = np.frombuffer(data, "<i4", len(data) // 4)
    u2 = np.frombuffer(data, "<u2", len(data) // 2)
    table = at + i4[at >> 2]
    vtable = table - i4[table >> 2]
    size = u2[vtable >> 1]  # the vtable's bytes: it reaches field 2 past 8 (4 of header, 2 per field)
    o_scale = np.where(size > 8, u2[np.where(size > 8, vtable + 8, vtable) >> 1], 0)
    field = np.where(o_scale > 0, table + o_scale, 0)  # 0: a harmless read of the root, masked below
    start = field + i4[field >> 2]
    if ((at | table | field | start) & 3).any() or (vtable & 1).any() or vtable.min() < 0:
        raise ValueError("misaligned quantization")
    n = np.where(o_scale > 0, i4[start >> 2], 0)
    scales[has] = np.where(n > 0, np.frombuffer(data, "<f4", len(data) // 4)[np.where(n > 0, start + 4, 0) >> 2], 0.0)
    return scales


@lru_cache(maxsize=1)
def _type_tables():
    """Each uint8 TensorType code's lower-case name (float32 where TFLite defines none) and bytes per
    element (4 where unknown), as a list and a numpy array."""
    import numpy as np

    type_names = _enums()[1]
    names = [type_names.get(code, "float32") for code in range(256)]
    return names, np.array([DTYPE_BYTES.get(name, 4) for name in names], np.int64)


#: The options of an operator whose options are not read: Operator's defaults.
_PLAIN = tuple(Operator._field_defaults[field] for field in Operator._fields[3:])
#: Operators whose builtin options the kernel reader needs.
_OPTIONS_READ = frozenset((*_CONV_OPTIONS, "CONCATENATION", "BATCH_MATMUL"))


def _int_vectors(i4, at, has, arrays: bool = False):
    """The int32 vectors that fields at positions `at` (where `has`) point to, as tuples: all read at
    once (a file with a misaligned or overlong vector is refused as corrupt). With `arrays`, also
    their values end to end and their lengths, as numpy arrays."""
    import numpy as np

    first = np.where(has, at + i4[at >> 2], 0)
    if (first & 3).any():
        raise ValueError("misaligned int vector")
    n = np.where(has, i4[first >> 2], 0)
    if n.min(initial=0) < 0:
        raise ValueError("negative vector length")
    ends = np.cumsum(n)
    total = int(ends[-1]) if len(ends) else 0
    if total > len(i4):
        raise ValueError("vectors longer than the file")
    if not arrays:  # each vector unpacked straight into its tuple
        unpack = _INTS
        return [unpack[k](i4, a) if k < 17 else struct.unpack_from(f"<{k}i", i4, a)
                for k, a in zip(n.tolist(), (first + 4).tolist())]
    values = i4[np.repeat((first >> 2) + 1 - (ends - n), n) + np.arange(total)]
    flat = values.tolist()
    out, begin = [], 0
    for end in ends.tolist():
        out.append(tuple(flat[begin:end]))
        begin = end
    return out, values, n


def _operator_columns(reader: _Reader, vector: tuple[int, int]):
    """Opcode index, inputs, outputs and (position, builtin-options offset) of every Operator table
    (fields: opcode_index 0, inputs 1, outputs 2, builtin_options 4), read for all operators at once
    with numpy, as `_tensor_columns` reads the tensors."""
    import numpy as np

    if not vector[1]:
        return [], [], [], ([], [])
    i4, p, where = _table_fields(reader, vector, 5)
    o_code, o_in, o_out, o_options = where[:, 0], where[:, 1], where[:, 2], where[:, 4]
    if ((o_code | o_in | o_out) & 3).any():
        raise ValueError("misaligned operator field")
    codes = np.where(o_code > 0, i4[(p + o_code) >> 2], 0).tolist()
    return (codes, _int_vectors(i4, p + o_in, o_in > 0), _int_vectors(i4, p + o_out, o_out > 0),
            (p.tolist(), o_options.tolist()))


def _zero_point(reader: _Reader, tensors: int, j: int) -> int | None:
    """The (first) zero point tensor `j` is quantized with, None when it is not quantized (Tensor:
    quantization 4; QuantizationParameters: zero_point 3, a vector of int64)."""
    start, n = reader.vector(tensors)
    if not 0 <= j < n:
        raise ValueError("tensor index out of range")
    table = reader.table(start + 4 * j)
    quantization = reader.table(reader.fields(table, 5)[4])
    at, count = reader.vector(reader.fields(quantization, 4)[3]) if quantization else (0, 0)
    return struct.unpack_from("<q", reader.data, at)[0] if count else None


def _parse(data: bytes) -> Graph:
    """One pass over the main subgraph. Weights are the tensors no operator writes that are not
    graph inputs or variables (what TFLite Micro requires to hold data), plus the outputs of a
    DEQUANTIZE of weights (float16 weights, expanded at run time): no buffer needs reading."""
    op_names = _enums()[0]
    r = _Reader(data)
    u32 = struct.Struct("<I").unpack_from
    i32 = struct.Struct("<i").unpack_from
    i8 = struct.Struct("<b").unpack_from
    model = r.fields(u32(data, 0)[0], 5)  # the root table, Model: operator_codes 1, subgraphs 2
    codes = []
    for code in r.tables(model[1]):  # OperatorCode: deprecated_builtin_code 0 (int8), builtin_code 3 (int32)
        f = r.fields(code, 4)
        codes.append(op_names.get(max(r.scalar(f[0], "<b"), r.scalar(f[3], "<i")), "CUSTOM"))
    subgraphs = r.tables(model[2])
    if not subgraphs:
        raise ConfigError("the model has no subgraph")
    graph = r.fields(subgraphs[0], 4)  # SubGraph: tensors 0, inputs 1, outputs 2, operators 3
    ints = r.ints
    operators = []
    written = set(ints(graph[1]))
    codes_at, inputs_of, outputs_of, options_at = _operator_columns(r, r.vector(graph[3]))
    if codes_at and (min(codes_at) < 0 or max(codes_at) >= len(codes)):
        raise ValueError("opcode index out of range")
    new = tuple.__new__  # an Operator without its generated __new__'s Python call, its defaults as they are
    for op, index, inputs, outputs, o_options in zip(options_at[0], codes_at, inputs_of, outputs_of, options_at[1]):
        name = codes[index]  # Operator: opcode_index 0, inputs 1, outputs 2, builtin_options 4
        written.update(outputs)
        if -1 in inputs:
            inputs = tuple(j for j in inputs if j >= 0)
        if not o_options or name not in _OPTIONS_READ:
            operators.append(new(Operator, (name, inputs, outputs, *_PLAIN)))
        elif name in _CONV_OPTIONS:
            pad, sh, sw, dh, dw = _CONV_OPTIONS[name]
            table, o = r.options(op, o_options, 7)
            operators.append(Operator(name, inputs, outputs, (i8(data, table + o[pad])[0] if o[pad] else 0) == 0,
                                      (i32(data, table + o[sh])[0] if o[sh] else 0, i32(data, table + o[sw])[0] if o[sw] else 0),
                                      (i32(data, table + o[dh])[0] if o[dh] else 1, i32(data, table + o[dw])[0] if o[dw] else 1)))
        elif name == "CONCATENATION":  # ConcatenationOptions: axis 0
            table, o = r.options(op, o_options, 1)
            operators.append(Operator(name, inputs, outputs, axis=i32(data, table + o[0])[0] if o[0] else 0))
        else:  # BATCH_MATMUL, BatchMatMulOptions: adj_x 0, adj_y 1
            table, o = r.options(op, o_options, 2)
            operators.append(Operator(name, inputs, outputs, adjoint=(bool(o[0] and data[table + o[0]]),
                                                                      bool(o[1] and data[table + o[1]])),
                                      rhs_zero=len(inputs) > 1 and _zero_point(r, graph[0], inputs[1]) == 0))
    shapes, dtypes, variable, elements, nbytes, quantization_at = _tensor_columns(r, r.vector(graph[0]))
    constant = [j not in written and not v for j, v in enumerate(variable)]
    for op in operators:  # float16 weights: the DEQUANTIZE of a weight is a weight
        if op.name == "DEQUANTIZE" and op.inputs and all(constant[j] for j in op.inputs):
            for j in op.outputs:
                constant[j] = True
    return Graph(shapes, dtypes, constant, variable, elements, nbytes, tuple(operators), ints(graph[1]), ints(graph[2]),
                 data, quantization_at)
