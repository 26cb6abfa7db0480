import io
import os
import unittest
from contextlib import redirect_stdout

import omni_worker as ow
from flow_grpo import worker_cost

URL = os.environ.get("OMNI_WORKER_URL")
WEIGHTS = os.environ.get("FLOW_GRPO_WEIGHTS")


@unittest.skipUnless(URL and WEIGHTS, "needs a live omni-worker serve (OMNI_WORKER_URL) and its weights")
class WorkerCostTest(unittest.TestCase):
    def test_times_rollouts_and_weight_cycles_and_leaves_the_worker_awake_on_a_new_version(self):
        client = ow.Client(URL)
        before = client.generate([{"prompt": "a red circle", "seed": 1, "steps": 2}]).meta_info["weights_version"]
        with redirect_stdout(io.StringIO()) as out:
            r = worker_cost.main(["--url", URL, "--weights", WEIGHTS, "--prompts", "2", "--group", "2", "--reps", "2", "--window-range", "0", "2"])
        self.assertEqual(r["samples"], 4)
        self.assertEqual(len(r["rollout_s"]), 2)
        self.assertEqual(len(r["cycle_s"]), 2)
        self.assertTrue(all(t > 0 for t in r["rollout_s"] + r["cycle_s"]))
        self.assertAlmostEqual(r["median"]["sum"], r["median"]["rollout"] + r["median"]["cycle"])
        self.assertIn('"median"', out.getvalue())
        self.assertFalse(client.is_sleeping())
        after = client.generate([{"prompt": "a red circle", "seed": 1, "steps": 2}]).meta_info["weights_version"]
        self.assertEqual(after, before + 3)  # one version per cycle: the warm-up and two timed ones
