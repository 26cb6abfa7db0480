"""Tensors without numpy: a dtype, a shape and the raw little-endian bytes.

`as_tensor` takes what a trainer holds (torch tensors, bf16 and fp16 included; numpy arrays;
array.array; Tensor) and `convert` returns what the caller asked for (numpy, torch, Tensor).
"""
import array
import struct
import sys

try:  # numpy and torch are used when present, never required
    import numpy as np
except ImportError:
    np = None
try:
    import torch
except ImportError:
    torch = None

DTYPE_SIZES = {'BOOL': 1, 'U8': 1, 'I8': 1, 'I16': 2, 'F16': 2, 'BF16': 2, 'I32': 4, 'F32': 4, 'F64': 8, 'I64': 8}
_STRUCT = {'BOOL': '?', 'U8': 'B', 'I8': 'b', 'I16': 'h', 'F16': 'e', 'I32': 'i', 'F32': 'f', 'F64': 'd', 'I64': 'q'}
_NUMPY = {'BOOL': 'bool', 'U8': 'uint8', 'I8': 'int8', 'I16': 'int16', 'F16': 'float16', 'I32': 'int32', 'F32': 'float32', 'F64': 'float64', 'I64': 'int64'}
_FROM_NUMPY = {v: k for k, v in _NUMPY.items()}
_ARRAY = {'f': 'F32', 'd': 'F64', 'b': 'I8', 'B': 'U8', 'h': 'I16', 'i': 'I32', 'l': 'I64' if array.array('l').itemsize == 8 else 'I32', 'q': 'I64'}

if sys.byteorder != 'little':
    raise ImportError('omni_worker: safetensors data is little-endian; this host is big-endian')


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Tensor:
    """A tensor as bytes: `dtype` is a safetensors dtype ('F32', 'BF16', ...), `data` a buffer."""

    __slots__ = ('dtype', 'shape', 'data')

    def __init__(self, dtype, shape, data):
        if dtype not in DTYPE_SIZES:
            raise ValueError(f'unknown dtype {dtype!r} (known: {", ".join(DTYPE_SIZES)})')
        self.dtype = dtype
        self.shape = tuple(int(d) for d in shape)
        self.data = memoryview(data).cast('B')
        if len(self.data) != _numel(self.shape) * DTYPE_SIZES[dtype]:
            raise ValueError(f'{dtype}{list(self.shape)} needs {_numel(self.shape) * DTYPE_SIZES[dtype]} bytes, got {len(self.data)}')

    @property
    def nbytes(self):
        return len(self.data)

    def tolist(self):
        """Values as a flat Python list (BF16 widened to float)."""
        if self.dtype == 'BF16':
            halves = struct.unpack(f'<{len(self.data) // 2}H', self.data)
            return list(struct.unpack(f'<{len(halves)}f', struct.pack(f'<{len(halves)}I', *(h << 16 for h in halves))))
        fmt = _STRUCT[self.dtype]
        return list(struct.unpack(f'<{len(self.data) // DTYPE_SIZES[self.dtype]}{fmt}', self.data))

    def __repr__(self):
        return f'Tensor({self.dtype}, {list(self.shape)})'


def as_tensor(value, where='tensor'):
    """A Tensor viewing `value`'s bytes (contiguous copies only where the layout needs one)."""
    if isinstance(value, Tensor):
        return value
    if torch is not None and isinstance(value, torch.Tensor):
        t = value.detach().to('cpu').contiguous()
        if t.dtype == torch.bfloat16:
            return Tensor('BF16', t.shape, t.view(torch.int16).numpy())
        if t.dtype == torch.float16:
            return Tensor('F16', t.shape, t.view(torch.int16).numpy())
        return as_tensor(t.numpy(), where)
    if np is not None and isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        name = a.dtype.name
        if name == 'bfloat16':  # ml_dtypes
            return Tensor('BF16', a.shape, a.view(np.uint16))
        if name not in _FROM_NUMPY or a.dtype.byteorder == '>':
            raise TypeError(f'{where}: numpy dtype {a.dtype} is not supported (use float32, float16, bfloat16, float64 or an integer type)')
        return Tensor(_FROM_NUMPY[name], a.shape, a.reshape(-1).view(np.uint8) if a.size else b'')
    if isinstance(value, array.array):
        if value.typecode not in _ARRAY:
            raise TypeError(f'{where}: array typecode {value.typecode!r} is not supported')
        return Tensor(_ARRAY[value.typecode], (len(value),), value)
    raise TypeError(f'{where}: expected a torch tensor, numpy array, array.array or omni_worker.Tensor, got {type(value).__name__}')


def is_tensor(value):
    return isinstance(value, Tensor) or (torch is not None and isinstance(value, torch.Tensor)) or (np is not None and isinstance(value, np.ndarray))


def default_return_type():
    """'torch' when torch imports, else 'numpy' when numpy imports, else 'tensor'."""
    return 'torch' if torch is not None else 'numpy' if np is not None else 'tensor'


def convert(t, return_type):
    """The tensor as numpy, torch or Tensor. A writable answer (the client reads answers into a
    bytearray) is viewed, not copied: the tensors of one answer share its buffer. Read-only bytes
    are copied once."""
    data = t.data if isinstance(t.data, memoryview) and not t.data.readonly else bytearray(t.data)
    if return_type == 'tensor':
        return Tensor(t.dtype, t.shape, data)
    if return_type not in ('numpy', 'torch'):
        raise ValueError(f"return_type must be 'numpy', 'torch', 'tensor' or 'auto', got {return_type!r}")
    if np is None:
        raise ImportError(f"return_type={return_type!r} needs numpy, which is not installed")
    if return_type == 'torch' and torch is None:
        raise ImportError("return_type='torch' needs torch, which is not installed")
    if t.dtype == 'BF16':
        raw = np.frombuffer(data, dtype=np.uint16).reshape(t.shape)
        if return_type == 'torch':
            return torch.from_numpy(raw.view(np.int16)).view(torch.bfloat16)
        return (raw.astype(np.uint32) << 16).view(np.float32)  # numpy has no bfloat16: widened
    a = np.frombuffer(data, dtype=_NUMPY[t.dtype]).reshape(t.shape)
    return torch.from_numpy(a) if return_type == 'torch' else a


def load_file(path, return_type='auto'):
    """A .safetensors file as {name: array} (numpy, torch or Tensor): a state dict to send."""
    from . import safetensors
    with open(path, 'rb') as f:
        _, tensors = safetensors.parse(f.read())
    kind = default_return_type() if return_type == 'auto' else return_type
    return {k: convert(t, kind) for k, t in tensors.items()}
