import time
import unittest

from flow_grpo.phases import PHASES, PhaseTimer


class PhaseTimerTest(unittest.TestCase):
    def test_phases_add_up_per_step_and_in_total(self):
        t = PhaseTimer()
        synced = []
        for _ in range(2):
            with t.phase("rollout", sync=lambda: synced.append(1)):
                time.sleep(0.01)
        step = t.take_step()
        self.assertGreaterEqual(step["rollout"], 0.02)
        self.assertEqual(step["reward"], 0.0)
        self.assertEqual(len(synced), 2)
        self.assertEqual(t.take_step()["rollout"], 0.0)
        self.assertEqual(t.totals["rollout"], step["rollout"])
        self.assertEqual(set(step), set(PHASES))

    def test_time_is_counted_when_the_block_raises_and_unknown_phases_refused(self):
        t = PhaseTimer()
        with self.assertRaises(ZeroDivisionError):
            with t.phase("training"):
                1 / 0
        self.assertGreater(t.totals["training"], 0.0)
        with self.assertRaisesRegex(KeyError, "unknown phase"):
            with t.phase("warmup"):
                pass
