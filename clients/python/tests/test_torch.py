"""The torch paths (bf16 and fp16 included) and the wire format against Hugging Face's safetensors
and PEFT, where they import (the GPU machine has them; CI's Python may not)."""
import json
import unittest

from omni_worker import as_tensor, safetensors
from omni_worker.client import _peft_config
from omni_worker.tensor import convert, torch

try:
    import safetensors.torch as hf_safetensors
except ImportError:
    hf_safetensors = None


@unittest.skipIf(torch is None, 'torch is not installed')
class TorchTest(unittest.TestCase):
    def tensors(self):
        g = torch.Generator().manual_seed(0)
        base = torch.randn(3, 5, generator=g)
        return {
            'w.bf16': base.to(torch.bfloat16),
            'w.fp16': base.to(torch.float16),
            'w.f32': base,
            'w.strided': base.t(),  # not contiguous: sent in logical order
            'w.i64': torch.arange(4),
        }

    def test_bf16_fp16_and_strided_tensors_keep_their_bits(self):
        for name, t in self.tensors().items():
            back = convert(as_tensor(t, name), 'torch')
            self.assertEqual(back.dtype, t.dtype, name)
            self.assertTrue(torch.equal(back, t), name)

    def test_dtypes_on_the_wire(self):
        names = {k: as_tensor(v, k).dtype for k, v in self.tensors().items()}
        self.assertEqual(names, {'w.bf16': 'BF16', 'w.fp16': 'F16', 'w.f32': 'F32', 'w.strided': 'F32', 'w.i64': 'I64'})

    def test_gpu_tensors_are_copied_to_the_host(self):
        if not torch.cuda.is_available():
            self.skipTest('no GPU')
        t = torch.randn(4, 4, device='cuda', dtype=torch.bfloat16)
        self.assertTrue(torch.equal(convert(as_tensor(t), 'torch'), t.cpu()))

    @unittest.skipIf(hf_safetensors is None, "Hugging Face's safetensors is not installed")
    def test_the_reference_reader_reads_what_the_client_sends(self):
        tensors = self.tensors()
        data = safetensors.serialize({k: as_tensor(v, k) for k, v in tensors.items()}, {'adapter_config': '{}'})
        back = hf_safetensors.load(data)
        for name, t in tensors.items():
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertTrue(torch.equal(back[name], t), name)

    @unittest.skipIf(hf_safetensors is None, "Hugging Face's safetensors is not installed")
    def test_the_client_reads_what_the_reference_writer_writes(self):
        tensors = {k: v.contiguous() for k, v in self.tensors().items()}
        metadata, parsed = safetensors.parse(hf_safetensors.save(tensors, {'k': 'v'}))
        self.assertEqual(metadata, {'k': 'v'})
        for name, t in tensors.items():
            self.assertTrue(torch.equal(convert(parsed[name], 'torch'), t), name)


class PeftConfigTest(unittest.TestCase):
    def test_a_lora_config_becomes_adapter_config_json(self):
        try:
            from peft import LoraConfig
        except ImportError:
            self.skipTest('peft is not installed')
        config = _peft_config(LoraConfig(r=4, lora_alpha=8, target_modules=['to_q', 'to_v']))
        text = json.loads(json.dumps(config))
        self.assertEqual((text['r'], text['lora_alpha'], sorted(text['target_modules'])), (4, 8, ['to_q', 'to_v']))

    def test_sets_become_sorted_lists(self):
        self.assertEqual(_peft_config({'r': 2, 'target_modules': {'b', 'a'}}), {'r': 2, 'target_modules': ['a', 'b']})


if __name__ == '__main__':
    unittest.main()
