"""Reading a .tflite flatbuffer: the one opener, operator names, element counts, weight tensors.

Shared by the kernel reader (what the runtime executes) and the arena model (what it allocates)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

__all__ = ["DTYPE_BYTES", "read_tflite", "open_model", "enum_names", "op_name", "elements", "constant_tensors"]

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


def open_model(source: str | Path | bytes):
    """(schema, model, main subgraph) of a .tflite given as bytes or a path; a clear error if it is none."""
    where = "model" if isinstance(source, (bytes, bytearray)) else str(source)
    data = read_tflite(source)
    schema = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConfigError(f"{where}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise ConfigError(f"{where}: the model has no subgraph")
        return schema, model, model.Subgraphs(0)
    except ConfigError:
        raise
    except Exception as exc:  # a corrupt flatbuffer raises whatever the decoder hits
        raise ConfigError(f"{where}: cannot read the flatbuffer ({type(exc).__name__})") from None


def op_name(model, op, op_names: dict[int, str]) -> str:
    """The builtin name of operator `op` (CUSTOM for custom operators)."""
    code = model.OperatorCodes(op.OpcodeIndex())
    return op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")


def elements(tensor) -> int:
    """Elements of a tensor; a dynamic dimension (-1, the batch) counts as one."""
    size = 1
    for dim in (tensor.ShapeAsNumpy() if tensor.ShapeLength() else []):
        size *= max(int(dim), 1)
    return size


def constant_tensors(model, graph, op_names: dict[int, str]) -> set[int]:
    """Indices of tensors that hold weights: those with data in the flatbuffer, and the outputs of
    DEQUANTIZE operators that read them (float16 weights, expanded at run time)."""
    constant = set()
    for j in range(graph.TensorsLength()):
        buffer = model.Buffers(graph.Tensors(j).Buffer())
        if buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0):
            constant.add(j)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if op_name(model, op, op_names) == "DEQUANTIZE" and op.InputsLength():
            if all(int(j) in constant for j in op.InputsAsNumpy() if j >= 0):
                constant.update(int(j) for j in op.OutputsAsNumpy())
    return constant
