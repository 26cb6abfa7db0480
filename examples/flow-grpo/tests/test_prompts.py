import unittest

from flow_grpo.prompts import MAX_WORDS, all_three_object_prompts, split_prompts, three_object_prompt
from omni_ref.reward import parse_prompt
from omni_ref.tokenizer import Tokenizer


class PromptsTest(unittest.TestCase):
    def test_every_prompt_fits_the_text_encoder_and_parses_to_three_objects(self):
        tok = Tokenizer.default()
        prompts = all_three_object_prompts()
        self.assertEqual(len(prompts), len(set(prompts)))
        for p in prompts[::97]:
            ids = tok([p])[0]
            self.assertNotIn(tok.unk_id, ids.tolist(), p)
            self.assertLessEqual(len(p.split()), MAX_WORDS)
            self.assertEqual(int((ids != tok.pad_id).sum()), len(p.split()) + 1)  # nothing truncated
            objs = parse_prompt(p)["objects"]
            self.assertEqual(len(objs), 3)
            self.assertEqual(len({o["position"] for o in objs}), 3)
            self.assertEqual(len({o["color"] for o in objs}), 3)

    def test_split_is_seeded_and_disjoint(self):
        train, held = split_prompts(64, seed=0)
        train2, held2 = split_prompts(64, seed=0)
        self.assertEqual(held, held2)
        self.assertEqual(len(held), 64)
        self.assertFalse(set(train) & set(held))
        self.assertNotEqual(held, split_prompts(64, seed=1)[1])

    def test_refuses_a_wrong_object_count(self):
        with self.assertRaisesRegex(ValueError, "three objects"):
            three_object_prompt([("red", "circle", "top left")])
