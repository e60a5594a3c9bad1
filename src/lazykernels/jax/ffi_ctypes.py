"""The ctypes XLA FFI handler: the fallback that runs a reduction's plan with the NumPy core.

Under ``jax.jit`` a reduction that the native handler (:mod:`.ffi_native`) does not serve
becomes an XLA custom call to the FFI target ``lazykernels_reduce_py``: the reference
backend, float16 inputs, empty sizes, K larger than the reduced axis, and every reduction
when the native handler cannot be built (no jaxlib headers, no compiler) or
``LAZYKERNELS_JAX_FFI=ctypes`` asks for this one. Its handler is a ctypes callback
(``jax.ffi.pycapsule``) that reads XLA's call frame as laid out by ``xla/ffi/api/c_api.h``:
it views XLA's input and output buffers as NumPy arrays without copying, and runs the plan
on them with the NumPy core (the compiled CPU kernel writes straight into XLA's output
buffers). Which plan to run is an int64 attribute ``key`` of the call, an index into
:data:`_PLANS` (plans are not serialisable into an attribute; the table holds every plan
lowered in this process).

Measured (``benchmarks/jax_overhead.py``, M = N = 100): one jitted Gaussian sum costs
about 80 us through this handler against about 30 us through the native one; the Python
callback takes the GIL, reads the attributes and views the buffers (~50 us in all).

Errors raised by the core while XLA runs the call (NaN inputs, a failed compilation) come
back to JAX as an FFI error carrying our message (JAX raises it as ``JaxRuntimeError``);
shape and dtype errors are raised earlier, at trace time, by the abstract evaluation.
"""

from __future__ import annotations

import ctypes
import math
import threading
from typing import Any, NamedTuple

import jax
import numpy as np

from ..core.genred import run_plan
from ..core.plan import ReductionPlan

TARGET = "lazykernels_reduce_py"

# xla/ffi/api/c_api.h (API version 0.3 of the headers of jaxlib >= 0.6)
_API_MAJOR, _API_MINOR = 0, 3
_EXTENSION_METADATA = 1
_STAGE_EXECUTE = 3
_ERROR_INTERNAL = 13
_ATTR_SCALAR = 3


class _ExtensionBase(ctypes.Structure):
    pass


_ExtensionBase._fields_ = [
    ("struct_size", ctypes.c_size_t),
    ("type", ctypes.c_int),
    ("next", ctypes.POINTER(_ExtensionBase)),
]


class _ApiVersion(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("extension_start", ctypes.c_void_p),
        ("major_version", ctypes.c_int),
        ("minor_version", ctypes.c_int),
    ]


class _Metadata(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("api_version", _ApiVersion),
        ("traits", ctypes.c_uint32),
    ]


class _MetadataExtension(ctypes.Structure):
    _fields_ = [("extension_base", _ExtensionBase), ("metadata", ctypes.POINTER(_Metadata))]


class _ErrorCreateArgs(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("extension_start", ctypes.c_void_p),
        ("message", ctypes.c_char_p),
        ("errc", ctypes.c_int),
    ]


_ErrorCreate = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(_ErrorCreateArgs))


class _Api(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("extension_start", ctypes.c_void_p),
        ("api_version", _ApiVersion),
        ("internal_api", ctypes.c_void_p),
        ("error_create", _ErrorCreate),
    ]


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("extension_start", ctypes.c_void_p),
        ("dtype", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("rank", ctypes.c_int64),
        ("dims", ctypes.POINTER(ctypes.c_int64)),
    ]


class _List(ctypes.Structure):  # XLA_FFI_Args and XLA_FFI_Rets
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("extension_start", ctypes.c_void_p),
        ("size", ctypes.c_int64),
        ("types", ctypes.POINTER(ctypes.c_int)),
        ("items", ctypes.POINTER(ctypes.c_void_p)),  # XLA_FFI_Buffer* each
    ]


class _ByteSpan(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Scalar(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("value", ctypes.c_void_p)]


class _Attrs(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("extension_start", ctypes.c_void_p),
        ("size", ctypes.c_int64),
        ("types", ctypes.POINTER(ctypes.c_int)),
        ("names", ctypes.POINTER(ctypes.c_void_p)),  # XLA_FFI_ByteSpan* each
        ("attrs", ctypes.POINTER(ctypes.c_void_p)),
    ]


class _CallFrame(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("extension_start", ctypes.POINTER(_ExtensionBase)),
        ("api", ctypes.POINTER(_Api)),
        ("ctx", ctypes.c_void_p),
        ("stage", ctypes.c_int),
        ("args", _List),
        ("rets", _List),
        ("attrs", _Attrs),
        ("future", ctypes.c_void_p),
    ]


class _Entry(NamedTuple):
    """What a custom call runs: the plan, and the shapes/dtypes of its buffers."""

    plan: ReductionPlan
    backend: str
    ranges: Any
    inputs: tuple[tuple[tuple[int, ...], str], ...]  # (shape, NumPy typestr) per buffer
    outputs: tuple[tuple[tuple[int, ...], str], ...]


_PLANS: list[_Entry] = []
_KEYS: dict[_Entry, int] = {}
_LOCK = threading.Lock()


def plan_key(entry: _Entry) -> int:
    """The ``key`` attribute that names ``entry`` to the handler."""
    with _LOCK:
        key = _KEYS.get(entry)
        if key is None:
            key = _KEYS[entry] = len(_PLANS)
            _PLANS.append(entry)
    return key


class _View:
    """A buffer of XLA's memory for ``np.asarray`` (the array interface, no copy)."""

    __slots__ = ("__array_interface__",)

    def __init__(self, address: int, shape: tuple[int, ...], typestr: str):
        self.__array_interface__ = {
            "data": (address or 0, False),
            "shape": shape,
            "typestr": typestr,
            "version": 3,
        }


_DATA = _Buffer.data.offset
_VIEWS: dict[tuple[int, tuple[int, ...], str], np.ndarray] = {}
_MAX_VIEWS = 256


def _arrays(buffers: _List, specs: tuple[tuple[tuple[int, ...], str], ...]) -> list:
    """XLA's buffers as NumPy arrays (views, no copy).

    XLA reuses its buffers from call to call, so the views are kept by address: a view
    owns nothing and is read only while XLA's call is running, when the memory at its
    address is that call's buffer.
    """
    items = buffers.items
    arrays = []
    for k, spec in enumerate(specs):
        address = ctypes.c_void_p.from_address(items[k] + _DATA).value or 0
        view = _VIEWS.get((address, *spec))  # type: ignore[arg-type]
        if view is None:
            shape, typestr = spec
            view = np.asarray(_View(address, *spec)) if math.prod(shape) else np.empty(*spec)
            if len(_VIEWS) >= _MAX_VIEWS:
                _VIEWS.clear()
            _VIEWS[(address, *spec)] = view  # type: ignore[index]
        arrays.append(view)
    return arrays


def _key(attrs: _Attrs) -> int:
    for k in range(attrs.size):
        name = _ByteSpan.from_address(attrs.names[k])
        if attrs.types[k] == _ATTR_SCALAR and ctypes.string_at(name.ptr, name.len) == b"key":
            scalar = _Scalar.from_address(attrs.attrs[k])
            return ctypes.c_int64.from_address(scalar.value).value
    raise RuntimeError(f"{TARGET}: the custom call has no int64 attribute 'key'")


def _execute(frame: _CallFrame) -> None:
    entry = _PLANS[_key(frame.attrs)]
    arrays = _arrays(frame.args, entry.inputs)
    targets = _arrays(frame.rets, entry.outputs)
    given = None if entry.ranges is None else entry.ranges.arrays
    plan, backend = entry.plan, entry.backend
    if all(t.dtype.kind == "f" for t in targets):  # the kernel writes into XLA's buffers
        run_plan(plan, arrays, backend=backend, ranges=given, out=tuple(targets))
        return
    # int32 indices (JAX's default 32-bit mode): the core returns int64, copied over
    for target, result in zip(targets, run_plan(plan, arrays, backend=backend, ranges=given)):
        target[...] = result


def _handle(frame_pointer: Any) -> int | None:
    frame = frame_pointer.contents
    extension = frame.extension_start
    if extension and extension.contents.type == _EXTENSION_METADATA:  # version query
        metadata = ctypes.cast(extension, ctypes.POINTER(_MetadataExtension)).contents
        version = metadata.metadata.contents.api_version
        version.major_version, version.minor_version = _API_MAJOR, _API_MINOR
        metadata.metadata.contents.traits = 0
        return None
    if frame.stage != _STAGE_EXECUTE:
        return None
    try:
        _execute(frame)
    except Exception as error:  # back to XLA as an FFI error, with our message
        message = f"{type(error).__name__}: {error}".encode()
        args = _ErrorCreateArgs(ctypes.sizeof(_ErrorCreateArgs), None, message, _ERROR_INTERNAL)
        return frame.api.contents.error_create(ctypes.byref(args))
    return None


_HANDLER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(_CallFrame))(_handle)
jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(_HANDLER), platform="cpu")
_LOWER = jax.ffi.ffi_lowering(TARGET)


def lower(ctx: Any, *args: Any, plan: ReductionPlan, backend: str, ranges: Any) -> Any:
    """The MLIR lowering of ``reduce_p`` on CPU as a custom call to :data:`TARGET`."""
    specs = lambda avals: tuple((tuple(a.shape), np.dtype(a.dtype).str) for a in avals)
    entry = _Entry(plan, backend, ranges, specs(ctx.avals_in), specs(ctx.avals_out))
    return _LOWER(ctx, *args, key=np.int64(plan_key(entry)))


__all__ = ["TARGET", "lower", "plan_key"]
