import os
import unittest

import numpy as np

import omni_worker as ow
from flow_grpo.reward import DENSE_FLOOR, score
from omni_ref.scenes import COLOR_NAMES, POSITIONS, SHAPES

PROMPT = "a red circle at the top left and a blue square at the top right and a green triangle at the bottom left"
LOGITS = os.environ.get("FLOW_GRPO_CLASSIFIED")  # written by test/flow-grpo.test.ts


def logits_for(objects, confidence=20.0):
    """Classifier logits of an image holding `objects` [(shape, color, position)] and nothing else."""
    s = np.zeros((5, 4))
    c = np.zeros((5, 6))
    s[:, 0] = confidence
    for shape, color, pos in objects:
        k = POSITIONS.index(pos)
        s[k] = 0
        s[k, 1 + SHAPES.index(shape)] = confidence
        c[k, COLOR_NAMES.index(color)] = confidence
    return s, c


class RewardTest(unittest.TestCase):
    def test_partial_credit_counts_objects_right_in_their_place(self):
        full = [("circle", "red", "top left"), ("square", "blue", "top right"), ("triangle", "green", "bottom left")]
        cases = [(full, 1.0), (full[:2], 2 / 3), ([("circle", "red", "top right"), full[2]], 1 / 3), ([], 0.0),
                 ([("circle", "green", "top left")] + full[1:], 2 / 3)]
        S = np.stack([logits_for(o)[0] for o, _ in cases])
        C = np.stack([logits_for(o)[1] for o, _ in cases])
        r, acc = score([PROMPT] * len(cases), S, C)
        np.testing.assert_allclose(r, [want for _, want in cases], rtol=1e-6)
        self.assertEqual(acc.tolist(), [True, False, False, False, False])

    def test_dense_credit_rises_as_the_missing_object_appears(self):
        two = [("circle", "red", "top left"), ("square", "blue", "top right")]
        s, c = logits_for(two)
        rewards = []
        for strength in (0.0, 5.0, 15.0, 30.0):
            s3, c3 = s.copy(), c.copy()
            k = POSITIONS.index("bottom left")
            s3[k, 1 + SHAPES.index("triangle")] = strength
            c3[k, COLOR_NAMES.index("green")] = strength
            rewards.append(float(score([PROMPT], s3[None], c3[None], reward="dense")[0][0]))
        self.assertEqual(rewards, sorted(rewards))
        self.assertGreater(rewards[-1] - rewards[0], 0.1)
        self.assertLessEqual(rewards[-1], 1.0)
        self.assertGreaterEqual(rewards[0], 2 / 3 * (1 - 1e-3))  # the missing object floors at 0 credit
        self.assertGreater(DENSE_FLOOR, 0)

    def test_mixed_reward_ranks_a_real_object_above_any_blob(self):
        two = [("circle", "red", "top left"), ("square", "blue", "top right")]
        s, c = logits_for(two)
        k = POSITIONS.index("bottom left")
        blob_s, blob_c = s.copy(), c.copy()  # the slot looks almost like a green triangle, argmax still "none"
        blob_s[k, 1 + SHAPES.index("triangle")] = 19.9
        blob_c[k, COLOR_NAMES.index("green")] = 30.0
        real_s, real_c = s.copy(), c.copy()  # a real, if unsure, green triangle
        real_s[k] = 0
        real_s[k, 1 + SHAPES.index("triangle")] = 3.0
        real_c[k, COLOR_NAMES.index("green")] = 1.0
        S, C = np.stack([s, blob_s, real_s]), np.stack([c, blob_c, real_c])
        mixed, acc = score([PROMPT] * 3, S, C, reward="mixed")
        dense, _ = score([PROMPT] * 3, S, C, reward="dense")
        self.assertLess(mixed[0], mixed[1])
        self.assertLess(mixed[1], mixed[2])
        self.assertGreater(dense[1], dense[2])  # the dense reward alone prefers the blob
        self.assertEqual(acc.tolist(), [False, False, True])

    def test_refusals(self):
        s, c = logits_for([])
        with self.assertRaisesRegex(ValueError, "names no object"):
            score(["the sky"], s[None], c[None])
        with self.assertRaisesRegex(ValueError, "prompts for"):
            score([PROMPT, PROMPT], s[None], c[None])
        with self.assertRaisesRegex(ValueError, "reward must be"):
            score([PROMPT], s[None], c[None], reward="soft")

    @unittest.skipUnless(LOGITS, "FLOW_GRPO_CLASSIFIED is not set (run through test/flow-grpo.test.ts)")
    def test_the_classifier_reads_three_object_renders(self):
        """Renders of flow_grpo.scenes3 classified by rewards/scene-classifier.onnx (the worker's
        ONNX Runtime): their true captions score 1, and a caption naming another colour for one
        object scores 2/3."""
        with open(LOGITS, "rb") as f:
            meta, t = ow.safetensors.parse(f.read())
        import json
        prompts, wrong = json.loads(meta["prompts"]), json.loads(meta["wrong_prompts"])
        S = np.frombuffer(bytes(t["shape_logits"].data), np.float32).reshape(t["shape_logits"].shape)
        C = np.frombuffer(bytes(t["color_logits"].data), np.float32).reshape(t["color_logits"].shape)
        r, acc = score(prompts, S, C)
        self.assertGreaterEqual(float(acc.mean()), 0.97)
        rw, accw = score(wrong, S, C)
        self.assertFalse(accw.any())
        self.assertGreaterEqual(float(np.mean(np.isclose(rw, 2 / 3))), 0.95)
