"""What travels between the checks and the student's process: length-prefixed frames of bounded size, and values
the checking side can read without running anything the student wrote.

The checking side sends its calls pickled (the student's process may unpickle whatever the checks send). What
comes back is untrusted, so it is never unpickled as is: :func:`pack` turns a result into plain containers,
tensors and tagged records (NumPy arrays, the package's dataclasses, functions the student returned, which stay
in the student's process and come back as handles), and :func:`unpack` reads it with ``torch.load(...,
weights_only=True)``, which builds tensors and containers only, and rebuilds a dataclass only if the package
defines it.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import os
import struct
from typing import Any

import numpy as np
import torch

HEADER = struct.Struct(">Q")
TAG = "\0natmu"  # the key of a tagged record


class TooLarge(Exception):
    """A frame over the size allowed."""


def send(fd: int, payload: bytes) -> None:
    data = HEADER.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data):]


def read_exactly(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, limit: int) -> bytes:
    """One frame; :class:`TooLarge` (without reading it) when it announces more than ``limit`` bytes."""
    (size,) = HEADER.unpack(read_exactly(fd, HEADER.size))
    if size > limit:
        raise TooLarge(f"{size / 2**20:.0f} MB, more than the {limit / 2**20:.0f} MB allowed")
    return read_exactly(fd, size)


def pack(value: Any, handle) -> Any:
    """``value`` as containers, tensors and tagged records; ``handle(fn)`` keeps a function and returns its number."""
    if value is None or isinstance(value, bool | int | float | str | bytes | torch.Tensor):
        return value
    if isinstance(value, list | tuple):
        items = [pack(v, handle) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {TAG: "dict", "items": [(pack(k, handle), pack(v, handle)) for k, v in value.items()]}
    if isinstance(value, np.ndarray | np.generic) and value.dtype != object:
        return {TAG: "numpy", "dtype": value.dtype.str, "shape": list(np.shape(value)),
                "data": np.ascontiguousarray(value).tobytes(), "scalar": isinstance(value, np.generic)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: pack(getattr(value, f.name), handle) for f in dataclasses.fields(value)}
        return {TAG: "dataclass", "module": type(value).__module__, "name": type(value).__qualname__,
                "fields": fields}
    if callable(value) and not isinstance(value, type):
        return {TAG: "function", "handle": handle(value), "name": getattr(value, "__name__", "function")}
    return {TAG: "other", "type": type(value).__name__, "text": repr(value)[:300]}


def encode(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def decode(data: bytes) -> Any:
    """Read what :func:`encode` wrote, building nothing but tensors and containers."""
    return torch.load(io.BytesIO(data), weights_only=True)


class Other:
    """A value of a type that does not travel: its type's name and its repr, for messages."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return self.text


def unpack(value: Any, function) -> Any:
    """The inverse of :func:`pack`; ``function(number, name)`` stands for a function left in the student's
    process."""
    if isinstance(value, list | tuple):
        items = [unpack(v, function) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if not (isinstance(value, dict) and TAG in value):
        return value
    kind = value[TAG]
    if kind == "dict":
        return {unpack(k, function): unpack(v, function) for k, v in value["items"]}
    if kind == "numpy":
        array = np.frombuffer(value["data"], dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        return array[()] if value["scalar"] else array
    if kind == "dataclass":
        return dataclass_of(value, function)
    if kind == "function":
        return function(value["handle"], value["name"])
    return Other(value["type"], value["text"])


def dataclass_of(value: dict, function) -> Any:
    """A dataclass of the package (never of another module: importing a module runs it), field by field."""
    module, name = value["module"], value["name"]
    if not module.startswith("natmu_lite.") or module.startswith("natmu_lite.classroom") or "." in name:
        return Other(name, f"<{module}.{name}>")
    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return Other(name, f"<{module}.{name}>")
    out = cls.__new__(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key, v in value["fields"].items():
        if key in known:
            object.__setattr__(out, key, unpack(v, function))
    return out
