import unittest

import numpy as np

from flow_grpo.advantages import group_advantages, informative_fraction


class AdvantagesTest(unittest.TestCase):
    def test_each_group_is_normalised_against_itself(self):
        rng = np.random.default_rng(0)
        r = rng.random(24)
        g = np.repeat(np.arange(3), 8)
        a = group_advantages(r, g, eps=0.0, clip=100)
        for k in range(3):
            m = g == k
            self.assertAlmostEqual(float(a[m].mean()), 0.0, places=5)
            self.assertAlmostEqual(float(a[m].std()), 1.0, places=4)
            # the order within a group is the rewards' order
            self.assertTrue(np.array_equal(np.argsort(a[m]), np.argsort(r[m])))

    def test_a_constant_group_carries_no_signal(self):
        r = np.array([0.5, 0.5, 0.5, 0.1, 0.9, 0.5])
        g = np.array([0, 0, 0, 1, 1, 1])
        a = group_advantages(r, g)
        self.assertTrue(np.all(a[:3] == 0))
        self.assertTrue(np.all(a[3:] != 0) or a[5] == 0)
        self.assertEqual(informative_fraction(r, g), 0.5)

    def test_clip_and_bad_input(self):
        r = np.array([0.0] * 99 + [1.0])
        a = group_advantages(r, np.zeros(100), clip=5.0)
        self.assertEqual(float(a.max()), 5.0)
        with self.assertRaisesRegex(ValueError, "NaN"):
            group_advantages([0.1, float("nan")], [0, 0])
        with self.assertRaisesRegex(ValueError, "one value per sample"):
            group_advantages([0.1, 0.2], [0])
