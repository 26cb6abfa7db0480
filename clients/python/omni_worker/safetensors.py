"""The safetensors format with the standard library only: the server's bodies and answers.

Layout: u64 little-endian header length N, N bytes of JSON header, then the data buffer.
"""
import json
import struct

from .tensor import DTYPE_SIZES, Tensor

MAX_HEADER_BYTES = 100_000_000


class SafetensorsError(ValueError):
    pass


def parse(data, max_header_bytes=MAX_HEADER_BYTES):
    """(metadata, {name: Tensor}) of safetensors bytes; tensors are views of `data`."""
    view = memoryview(data).cast('B')
    if len(view) < 8:
        raise SafetensorsError(f'{len(view)} bytes, shorter than the 8-byte header length')
    (n,) = struct.unpack_from('<Q', view, 0)
    if n > max_header_bytes or 8 + n > len(view):
        raise SafetensorsError(f'header length {n} does not fit {len(view)} bytes')
    header = json.loads(bytes(view[8:8 + n]).decode('utf-8'))
    metadata = header.pop('__metadata__', None) or {}
    start = 8 + n
    tensors = {}
    for name, entry in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        dtype, shape, (begin, end) = entry['dtype'], tuple(entry['shape']), entry['data_offsets']
        if dtype not in DTYPE_SIZES:
            raise SafetensorsError(f'tensor {name!r}: unknown dtype {dtype}')
        tensors[name] = Tensor(dtype, shape, view[start + begin:start + end])
    return metadata, tensors


def plan(tensors, metadata=None):
    """The header bytes and the data chunks of a safetensors file, in order, without joining them.

    `tensors` maps names to Tensor; the data buffer is the tensors in the order given.
    """
    header = {}
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, t in tensors.items():
        size = t.nbytes
        header[name] = {'dtype': t.dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + size]}
        chunks.append(t.data)
        offset += size
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 8)  # the data buffer starts 8-byte aligned
    return struct.pack('<Q', len(text)) + text, chunks, 8 + len(text) + offset


def serialize(tensors, metadata=None):
    """Safetensors bytes of `tensors` (name -> Tensor) and string metadata."""
    head, chunks, _ = plan(tensors, metadata)
    return b''.join([head, *(bytes(c) for c in chunks)])
