"""The client's safetensors and tensor conversions, offline: standard library and numpy paths."""
import array
import http.client
import json
import struct
import unittest

from omni_worker import Tensor, as_tensor, safetensors
from omni_worker.client import _read_body
from omni_worker.tensor import convert, np


class SafetensorsTest(unittest.TestCase):
    def test_round_trip_keeps_dtype_shape_bytes_and_metadata(self):
        tensors = {
            'a': Tensor('F32', (2, 3), struct.pack('<6f', 1, 2, 3, 4, 5, 6)),
            'b': Tensor('BF16', (2,), struct.pack('<2H', 0x3F80, 0xC000)),
            'c': Tensor('U8', (0,), b''),
        }
        metadata, back = safetensors.parse(safetensors.serialize(tensors, {'k': 'v'}))
        self.assertEqual(metadata, {'k': 'v'})
        self.assertEqual(set(back), {'a', 'b', 'c'})
        for name, t in tensors.items():
            self.assertEqual((back[name].dtype, back[name].shape, bytes(back[name].data)), (t.dtype, t.shape, bytes(t.data)))
        self.assertEqual(back['b'].tolist(), [1.0, -2.0])

    def test_header_is_padded_so_the_data_starts_8_byte_aligned(self):
        data = safetensors.serialize({'x': Tensor('F64', (1,), struct.pack('<d', 0.5))})
        (n,) = struct.unpack_from('<Q', data)
        self.assertEqual(n % 8, 0)
        self.assertEqual(json.loads(data[8:8 + n])['x']['data_offsets'], [0, 8])

    def test_refuses_a_truncated_header(self):
        with self.assertRaises(safetensors.SafetensorsError):
            safetensors.parse(struct.pack('<Q', 1000) + b'{}')

    def test_tensor_checks_its_byte_count(self):
        with self.assertRaisesRegex(ValueError, 'needs 8 bytes'):
            Tensor('F32', (2,), b'\0' * 4)

    def test_array_array_is_taken_without_numpy(self):
        t = as_tensor(array.array('f', [1.5, -2.0]))
        self.assertEqual((t.dtype, t.shape, t.tolist()), ('F32', (2,), [1.5, -2.0]))

    def test_other_types_are_refused_by_name(self):
        with self.assertRaisesRegex(TypeError, 'w: expected a torch tensor'):
            as_tensor([1.0, 2.0], 'w')


@unittest.skipIf(np is None, 'numpy is not installed: the standard-library path is tested alone')
class NumpyTest(unittest.TestCase):
    def test_float16_float32_and_int_arrays_keep_their_dtype(self):
        for dtype, name in (('float16', 'F16'), ('float32', 'F32'), ('int64', 'I64'), ('uint8', 'U8')):
            a = np.arange(6, dtype=dtype).reshape(2, 3)
            t = as_tensor(a)
            self.assertEqual((t.dtype, t.shape), (name, (2, 3)))
            np.testing.assert_array_equal(convert(t, 'numpy'), a)

    def test_non_contiguous_arrays_are_sent_in_logical_order(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3).T
        np.testing.assert_array_equal(convert(as_tensor(a), 'numpy'), a)

    def test_bf16_comes_back_widened_to_float32(self):
        t = Tensor('BF16', (2,), struct.pack('<2H', 0x3F80, 0x4040))
        np.testing.assert_array_equal(convert(t, 'numpy'), np.array([1.0, 3.0], dtype=np.float32))

    def test_unsupported_dtypes_are_refused_by_name(self):
        with self.assertRaisesRegex(TypeError, 'complex64'):
            as_tensor(np.zeros(2, dtype=np.complex64))

    def test_a_writable_answer_is_viewed_and_read_only_bytes_are_copied(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        data = safetensors.serialize({'a': as_tensor(a), 'b': as_tensor(np.ones(3, dtype=np.uint8))})
        answer = bytearray(data)
        _, viewed = safetensors.parse(answer)
        _, copied = safetensors.parse(bytes(data))
        va, ca = convert(viewed['a'], 'numpy'), convert(copied['a'], 'numpy')
        np.testing.assert_array_equal(va, a)
        np.testing.assert_array_equal(ca, a)
        self.assertTrue(np.shares_memory(va, np.frombuffer(answer, dtype=np.uint8)))
        self.assertTrue(va.flags.writeable and ca.flags.writeable)


class ReadBodyTest(unittest.TestCase):
    class Answer:
        """An HTTP answer whose body arrives in pieces of at most `piece` bytes."""

        def __init__(self, body, length, piece=5):
            self.body, self.length, self.piece, self.at = body, length, piece, 0

        def getheader(self, name):
            return None if self.length is None else str(self.length) if name == 'Content-Length' else None

        def read(self):
            rest, self.at = self.body[self.at:], len(self.body)
            return rest

        def readinto(self, view):
            n = min(len(view), self.piece, len(self.body) - self.at)
            view[:n] = self.body[self.at:self.at + n]
            self.at += n
            return n

    def test_reads_the_whole_body_into_one_writable_buffer_with_or_without_a_length(self):
        body = bytes(range(23))
        for length in (23, None):
            data = _read_body(self.Answer(body, length))
            self.assertEqual((type(data), bytes(data)), (bytearray, body))

    def test_a_body_shorter_than_its_length_is_an_incomplete_read(self):
        with self.assertRaises(http.client.IncompleteRead):
            _read_body(self.Answer(bytes(10), 12))


if __name__ == '__main__':
    unittest.main()
