"""Rollout.to_dataproto() against a stand-in for verl (not installed here): a `verl` module put in
sys.modules whose DataProto.from_dict takes verl's signature (tensors, non_tensors, meta_info,
num_batch_dims, auto_padding) and refuses what verl refuses: tensors that are not torch tensors or
disagree on the batch size, non-tensor columns that are not arrays of one entry per sample. Where
torch is missing, a small torch stand-in (Tensor, from_numpy) takes its place: what is checked
is the mapping, not torch."""
import sys
import types
import unittest
from unittest import mock

from omni_worker import Rollout, Tensor
from omni_worker.tensor import np, torch


def fake_torch():
    module = types.ModuleType('torch')

    class FakeTensor:
        def __init__(self, array):
            self._array = array
            self.shape = array.shape

        def numpy(self):
            return self._array

    module.Tensor = FakeTensor
    module.from_numpy = FakeTensor
    return module


def fake_verl(torch_module):
    """verl's DataProto as its from_dict and check_consistency behave (batch as a dict with
    batch_size, standing in for a TensorDict)."""
    module = types.ModuleType('verl')

    class TensorDict(dict):
        def __init__(self, source, batch_size):
            for k, v in source.items():
                assert isinstance(v, torch_module.Tensor), f'{k} is a {type(v).__name__}, not a torch tensor'
            super().__init__(source)
            self.batch_size = tuple(batch_size)

    class DataProto:
        def __init__(self, batch=None, non_tensor_batch=None, meta_info=None):
            self.batch, self.non_tensor_batch, self.meta_info = batch, non_tensor_batch or {}, meta_info or {}
            if batch is not None:
                assert len(batch.batch_size) == 1, 'only num_batch_dims=1'
            for k, v in self.non_tensor_batch.items():
                assert isinstance(v, np.ndarray), f'non_tensor_batch[{k}] is not a numpy array'
                if batch is not None:
                    assert v.shape[0] == batch.batch_size[0], f'non_tensor_batch[{k}] has {v.shape[0]} rows, the batch {batch.batch_size[0]}'

        def __len__(self):
            return self.batch.batch_size[0] if self.batch is not None else 0

        @classmethod
        def from_dict(cls, tensors=None, non_tensors=None, meta_info=None, num_batch_dims=1, auto_padding=False):
            tensors, non_tensors, meta_info = tensors or {}, non_tensors or {}, meta_info if meta_info is not None else {}
            sizes = {k: tuple(t.shape[:num_batch_dims]) for k, t in tensors.items()}
            assert len(set(sizes.values())) <= 1, f'tensors disagree on the batch size: {sizes}'
            for k, v in non_tensors.items():
                if not isinstance(v, np.ndarray):
                    non_tensors[k] = np.array(v, dtype=object)
            batch = TensorDict(tensors, next(iter(sizes.values()))) if tensors else None
            return cls(batch=batch, non_tensor_batch=non_tensors, meta_info=meta_info)

    module.DataProto = DataProto
    return module


def stand_ins():
    """(torch, the sys.modules entries to patch in): real torch where it imports."""
    torch_module = torch if torch is not None else fake_torch()
    return torch_module, {'verl': fake_verl(torch_module), 'torch': torch_module}


@unittest.skipIf(np is None, 'numpy is not installed (verl needs it)')
class ToDataProtoTest(unittest.TestCase):
    def modules(self):
        return stand_ins()

    def rollout(self):
        return Rollout(
            {
                'responses': np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4),
                'rollout_log_probs': np.array([[-1.5, -2.0], [-0.25, -3.0], [-1.0, -1.0]], dtype=np.float32),
            },
            # 'window' holds equal-length lists: each row keeps its list, not a 2-D array.
            {'prompt': ['a red circle', 'a red circle', 'a blue square'], 'seed': [5, 6, 9], 'window': [[0, 2], [1, 3], [0, 2]]},
            {'weights_version': 3, 'sigmas': [1.0, 0.5, 0.0], 'sde_type': 'sde'},
        )

    def test_tensors_columns_and_meta_map_onto_dataproto(self):
        torch_module, modules = self.modules()
        r = self.rollout()
        with mock.patch.dict(sys.modules, modules):
            dp = r.to_dataproto()
        self.assertEqual(len(dp), 3)
        self.assertEqual(set(dp.batch), {'responses', 'rollout_log_probs'})
        for k, v in r.items():
            self.assertIsInstance(dp.batch[k], torch_module.Tensor)
            self.assertTrue(np.array_equal(dp.batch[k].numpy(), v), k)
        self.assertEqual(set(dp.non_tensor_batch), {'prompt', 'seed', 'window'})
        for k, values in r.non_tensor_batch.items():
            col = dp.non_tensor_batch[k]
            self.assertEqual((col.dtype, col.shape), (np.dtype(object), (3,)), k)
            self.assertEqual(list(col), values, k)
        self.assertEqual(dp.meta_info, r.meta_info)
        dp.meta_info['sigmas'].append(9.0)  # the trainer's edits stay in its DataProto
        self.assertEqual(r.meta_info['sigmas'], [1.0, 0.5, 0.0])

    def test_a_rollout_of_omni_worker_tensors_maps_through_torch(self):
        if torch is None:
            self.skipTest('torch is not installed')
        r = Rollout({'x': Tensor('F32', (2, 1), np.array([[1.0], [2.0]], dtype=np.float32))}, {'seed': [1, 2]}, {})
        with mock.patch.dict(sys.modules, {'verl': fake_verl(torch)}):
            dp = r.to_dataproto()
        self.assertTrue(torch.equal(dp.batch['x'], torch.tensor([[1.0], [2.0]])))

    def test_without_verl_it_says_so(self):
        _, modules = self.modules()
        with mock.patch.dict(sys.modules, {**modules, 'verl': None}):
            with self.assertRaises(ImportError):
                self.rollout().to_dataproto()


if __name__ == '__main__':
    unittest.main()
