"""Against a running `omni-worker serve` (OMNI_WORKER_URL) of the small dummy model; the vitest
wrapper (test/python-client.test.ts) starts it and writes the weights in OMNI_WORKER_WEIGHTS."""
import json
import os
import pathlib
import re
import sys
import threading
import unittest
from unittest import mock

import omni_worker as ow
from omni_worker.tensor import np
from tests.test_dataproto import stand_ins

URL = os.environ.get('OMNI_WORKER_URL')
WEIGHTS = pathlib.Path(os.environ.get('OMNI_WORKER_WEIGHTS', '.'))
REPO = pathlib.Path(__file__).resolve().parents[3]
ADAPTER = REPO / 'test' / 'fixtures' / 'lora' / 'attn-r4'

SDE = {'type': 'sde', 'noiseLevel': 0.7, 'window': {'size': 2, 'range': [0, 3]}}
CAPTURE = {'latents': True, 'timesteps': True, 'logProbs': True}
GROUP = {'prompt': 'a red circle', 'num_outputs_per_prompt': 4, 'seed': 5, 'steps': 4, 'sde': SDE, 'capture': CAPTURE}


def as_bytes(x):
    """The raw bytes of whatever the client returned (numpy array or Tensor)."""
    return x.tobytes() if np is not None else bytes(x.data)


def read_state_dict(path):
    """A state dict as a trainer holds it: numpy arrays when numpy imports, else Tensor."""
    _, tensors = ow.safetensors.parse(path.read_bytes())
    if np is None:
        return tensors
    return {k: np.frombuffer(bytes(t.data), dtype=np.float32).reshape(t.shape).copy() for k, t in tensors.items()}


@unittest.skipUnless(URL, 'OMNI_WORKER_URL is not set (run through test/python-client.test.ts)')
class LiveTest(unittest.TestCase):
    def setUp(self):
        self.client = ow.Client(URL, token=os.environ.get('OMNI_WORKER_TOKEN'), return_type='numpy' if np is not None else 'tensor')

    def tearDown(self):
        self.client.close()

    def test_sde_group_log_probs_recomputed_with_ratio_1(self):
        r = self.client.generate([GROUP])
        self.assertEqual(len(r), 4)
        self.assertEqual(tuple(r['rollout_log_probs'].shape), (4, 2))
        self.assertEqual(r.non_tensor_batch['seed'], [5, 6, 7, 8])
        self.assertEqual(r.meta_info['sde_type'], 'sde')
        [scored] = self.client.collective_rpc('computeLogProbs', [ow.score_args(r)])
        # Bit for bit: the importance ratio exp(new - old) is exactly 1.
        self.assertEqual(as_bytes(scored['logProbs']), as_bytes(r['rollout_log_probs']))
        self.assertEqual(scored['weightsVersion'], r.meta_info['weights_version'])

    def test_a_served_rollout_maps_onto_dataproto(self):
        if np is None:
            self.skipTest('numpy is not installed (verl needs it)')
        r = self.client.generate([GROUP])
        _, modules = stand_ins()
        with mock.patch.dict(sys.modules, modules):
            dp = r.to_dataproto()
        self.assertEqual(len(dp), 4)
        self.assertEqual(set(dp.batch), set(r))
        self.assertEqual(list(dp.non_tensor_batch['seed']), [5, 6, 7, 8])
        self.assertEqual(dp.meta_info['weights_version'], r.meta_info['weights_version'])

    def test_concurrent_callers_get_what_they_get_alone(self):
        requests = [{**GROUP, 'prompt': p, 'seed': s, 'num_outputs_per_prompt': 2} for p, s in (('a red circle', 1), ('a blue square', 9), ('a green circle', 4))]
        alone = [self.client.generate([q]) for q in requests]
        together = [None] * len(requests)

        def call(i):
            with ow.Client(URL, token=os.environ.get('OMNI_WORKER_TOKEN'), return_type=self.client.return_type) as c:
                together[i] = c.generate([requests[i]])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for a, b in zip(alone, together):
            self.assertEqual(sorted(a), sorted(b))
            for key in a:
                self.assertEqual(as_bytes(a[key]), as_bytes(b[key]), key)
            self.assertEqual(a.non_tensor_batch, b.non_tensor_batch)
            self.assertEqual(a.meta_info, b.meta_info)

    def test_sleep_refuses_rollouts_and_wake_restores_identical_samples(self):
        before = self.client.generate([GROUP])
        self.assertEqual(self.client.sleep(level=1)['level'], 1)
        self.assertTrue(self.client.is_sleeping())
        with self.assertRaises(ow.OmniWorkerError) as caught:
            self.client.generate([GROUP])
        self.assertEqual(caught.exception.status, 503)
        self.assertIn('asleep', caught.exception.message)
        self.assertTrue(self.client.wake_up(['sessions'])['awake'])
        self.assertFalse(self.client.is_sleeping())
        self.assertEqual(as_bytes(self.client.generate([GROUP])['latents_clean']), as_bytes(before['latents_clean']))

    def test_weights_from_arrays_in_buckets_then_back(self):
        base = self.client.generate([GROUP])
        version = base.meta_info['weights_version']
        other = read_state_dict(WEIGHTS / 'transformer-seed1.safetensors')
        done = self.client.update_weights(other, bucket_bytes=4096)
        self.assertEqual(done['weightsVersion'], version + 1)
        self.assertGreater(done['tensors'], 1)
        changed = self.client.generate([GROUP])
        self.assertEqual(changed.meta_info['weights_version'], version + 1)
        self.assertNotEqual(as_bytes(changed['latents_clean']), as_bytes(base['latents_clean']))
        # The serving weights again, in one unbucketed body: the first samples, bit for bit.
        self.client.update_weights(read_state_dict(WEIGHTS / 'transformer-seed0.safetensors'))
        again = self.client.generate([GROUP])
        self.assertEqual(again.meta_info['weights_version'], version + 2)
        self.assertEqual(as_bytes(again['latents_clean']), as_bytes(base['latents_clean']))

    def test_a_refused_bucket_aborts_the_update(self):
        version = self.client.collective_rpc('getState')[0]['weightsVersion']
        bad = dict(read_state_dict(WEIGHTS / 'transformer-seed1.safetensors'))
        bad['not.a.parameter'] = next(iter(bad.values()))
        with self.assertRaises(ow.OmniWorkerError) as caught:
            self.client.update_weights(bad, bucket_bytes=1 << 30)
        self.assertEqual(caught.exception.status, 422)
        self.assertIn('not.a.parameter', caught.exception.message)
        self.assertEqual(self.client.collective_rpc('getState')[0]['weightsVersion'], version)
        self.assertEqual(self.client.finish_weight_update()['tensors'], 0)  # nothing left staged

    def test_lora_adapter_from_memory(self):
        config = json.loads((ADAPTER / 'adapter_config.json').read_text())
        _, tensors = ow.safetensors.parse((ADAPTER / 'adapter_model.safetensors').read_bytes())
        state_dict = tensors if np is None else {k: ow.tensor.convert(t, 'numpy') for k, t in tensors.items()}
        info = self.client.load_lora_adapter('ema', state_dict, config, replace=True)
        self.assertEqual(info['name'], 'ema')
        self.assertIn('ema', [a['name'] for a in self.client.list_lora_adapters()['adapters']])
        base = self.client.generate([GROUP])
        tuned = self.client.generate([{**GROUP, 'lora': {'name': 'ema', 'scale': 1}}])
        self.assertNotEqual(as_bytes(tuned['latents_clean']), as_bytes(base['latents_clean']))
        self.client.unload_lora_adapter('ema')
        self.assertNotIn('ema', [a['name'] for a in self.client.list_lora_adapters()['adapters']])

    def test_bad_requests_name_the_field(self):
        with self.assertRaises(ow.OmniWorkerError) as caught:
            self.client.generate([{'prompt': 'x'}, {'prompt': 'y', 'steps': -1}])
        self.assertEqual((caught.exception.status, caught.exception.request), (422, 1))
        self.assertIn('steps', caught.exception.message)
        with self.assertRaises(ow.OmniWorkerError) as caught:
            self.client.generate([{'prompt': 3}])
        self.assertEqual((caught.exception.status, caught.exception.field), (400, 'body[0].prompt'))

    def test_metrics_count_rollouts(self):
        self.client.generate([{'prompt': 'a red circle', 'steps': 2}])
        text = self.client.metrics()
        self.assertRegex(text, r'omni_worker_rollouts_total\{outcome="ok"\} [1-9]')
        self.assertTrue(re.search(r'^omni_worker_weights_version \d+', text, re.M))


@unittest.skipUnless(URL, 'OMNI_WORKER_URL is not set (run through test/python-client.test.ts)')
class ReadmeExampleTest(unittest.TestCase):
    def test_the_use_from_python_example_runs(self):
        readme = (REPO / 'README.md').read_text()
        section = readme.split('## Use from Python', 1)[1]
        code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
        exec(compile(code, 'README.md (Use from Python)', 'exec'), {'__name__': 'readme_example'})


if __name__ == '__main__':
    unittest.main()
