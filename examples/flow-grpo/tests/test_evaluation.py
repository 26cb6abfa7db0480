import unittest

import numpy as np

from flow_grpo.evaluation import seed_diversity


class SeedDiversityTest(unittest.TestCase):
    def test_is_zero_when_every_seed_of_a_prompt_draws_the_same_image(self):
        rng = np.random.default_rng(0)
        one = rng.integers(0, 256, size=(3, 3, 8, 8), dtype=np.uint8)
        images = np.repeat(one, 4, axis=0)  # 3 prompts x 4 identical seeds
        self.assertEqual(seed_diversity(images, 4), 0.0)

    def test_is_the_per_pixel_std_across_seeds_averaged_over_pixels_and_prompts(self):
        values = [0, 30, 60, 10, 10, 10]  # prompt 0: std sqrt(600); prompt 1: one image thrice
        images = np.stack([np.full((3, 4, 4), v, dtype=np.uint8) for v in values])
        self.assertAlmostEqual(seed_diversity(images, 3), np.sqrt(600) / 2)
        images[4, 0, 0, 0] = 13  # one pixel of 48 in prompt 1 differs: std sqrt(2) there
        self.assertAlmostEqual(seed_diversity(images, 3), (np.sqrt(600) + np.sqrt(2) / 48) / 2)


if __name__ == "__main__":
    unittest.main()
