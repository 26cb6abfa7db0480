import os
import unittest

import numpy as np

import omni_worker as ow
from flow_grpo.bookkeeping import RolloutMismatch, check_rollout, max_abs_log_ratio, rollout_requests, transitions
from omni_worker.rollout import Rollout

URL = os.environ.get("OMNI_WORKER_URL")
WEIGHTS = os.environ.get("FLOW_GRPO_WEIGHTS")
SDE = {"type": "sde", "noiseLevel": 0.7, "window": {"size": 2, "range": [0, 3]}}
PROMPTS = ["a red circle", "a blue square"]


def fake_rollout(n=4, W=2, version=3, starts=(0, 1, 1, 0)):
    sigmas = [1.0, 0.9, 0.7, 0.4, 0.0]
    tensors = {"all_latents": np.zeros((n, W + 1, 3, 4, 4), np.float32),
               "all_timesteps": np.zeros((n, W), np.float32), "rollout_log_probs": np.zeros((n, W), np.float32),
               "prompt_embeds": np.zeros((n, 2, 2), np.float32), "pooled_prompt_embeds": np.zeros((n, 2), np.float32)}
    per = {"prompt": ["a", "a", "b", "b"], "seed": [10, 11, 12, 13], "sde_window_start": list(starts)}
    meta = {"weights_version": version, "sde_window_size": W, "sigmas": sigmas, "noise_level": 0.7, "guidance_scale": 4.5}
    return Rollout(tensors, per, meta)


class BookkeepingTest(unittest.TestCase):
    def test_a_rollout_that_matches_its_request_passes(self):
        check_rollout(fake_rollout(), ["a", "b"], 2, 10, 3, 2)

    def test_each_mismatch_is_named(self):
        r = fake_rollout()
        for args, msg in ((( ["a", "b"], 2, 10, 4, 2), "weights version 3, the trainer sent version 4"),
                          ((["b", "a"], 2, 10, 3, 2), "request order"),
                          ((["a", "b"], 2, 11, 3, 2), "seeds"),
                          ((["a", "b"], 2, 10, 3, 3), "window"),
                          ((["a", "b", "c"], 2, 10, 3, 2), "samples for 3 prompts")):
            with self.assertRaisesRegex(RolloutMismatch, msg):
                check_rollout(r, *args)
        del r["rollout_log_probs"]
        with self.assertRaisesRegex(RolloutMismatch, "lacks rollout_log_probs"):
            check_rollout(r, ["a", "b"], 2, 10, 3, 2)

    def test_transitions_index_the_schedule_by_window_start(self):
        tr = transitions(fake_rollout())
        self.assertEqual(tr["step"].tolist(), [[0, 1], [1, 2], [1, 2], [0, 1]])
        np.testing.assert_array_equal(tr["sigma"][1], np.float32([0.9, 0.7]))
        np.testing.assert_array_equal(tr["sigma_next"][1], np.float32([0.7, 0.4]))
        self.assertEqual(float(tr["sigma1"]), np.float32(0.9))
        with self.assertRaisesRegex(RolloutMismatch, "reaches step"):
            transitions(fake_rollout(starts=(0, 3, 1, 0)))

    def test_requests_and_ratio(self):
        reqs = rollout_requests(["a", "b"], 4, 100, SDE)
        self.assertEqual([r["seed"] for r in reqs], [100, 104])
        self.assertTrue(all(r["capture"]["logProbs"] for r in reqs))
        with self.assertRaisesRegex(ValueError, "group"):
            rollout_requests(["a"], 1, 0, SDE)
        self.assertEqual(max_abs_log_ratio([[1.0, 2.0]], [[1.0, 2.5]]), 0.5)


@unittest.skipUnless(URL, "OMNI_WORKER_URL is not set (run through test/flow-grpo.test.ts)")
class LiveRolloutTest(unittest.TestCase):
    """The trainer's bookkeeping against a real `omni-worker serve` (the dummy model)."""

    def setUp(self):
        self.client = ow.Client(URL, return_type="numpy")

    def generate(self, seed):
        reqs = [dict(r, steps=4) for r in rollout_requests(PROMPTS, 3, seed, SDE)]
        return self.client.generate(reqs)

    def test_the_worker_answers_what_the_trainer_asked(self):
        r = self.generate(50)
        check_rollout(r, PROMPTS, 3, 50, r.meta_info["weights_version"], 2)
        tr = transitions(r)
        # the trainer's schedule indices give the timesteps the worker recorded
        np.testing.assert_array_equal(r["all_timesteps"], (tr["sigma"] * np.float32(1000)).astype(np.float32))
        self.assertTrue(np.all(tr["sigma_next"] < tr["sigma"]))
        self.assertTrue(np.all(np.isfinite(r["rollout_log_probs"])))

    @unittest.skipUnless(WEIGHTS, "FLOW_GRPO_WEIGHTS is not set")
    def test_the_version_sent_is_the_version_stamped(self):
        _, tensors = ow.safetensors.parse(open(WEIGHTS, "rb").read())
        sent = self.client.update_weights(tensors)["weightsVersion"]
        r = self.generate(60)
        check_rollout(r, PROMPTS, 3, 60, sent, 2)
        with self.assertRaisesRegex(RolloutMismatch, f"version {sent}, the trainer sent version {sent - 1}"):
            check_rollout(r, PROMPTS, 3, 60, sent - 1, 2)
        # sleep / wake as the trainer does between steps keeps the version
        self.client.sleep(level=1)
        self.assertTrue(self.client.is_sleeping())
        self.client.wake_up()
        check_rollout(self.generate(60), PROMPTS, 3, 60, sent, 2)
