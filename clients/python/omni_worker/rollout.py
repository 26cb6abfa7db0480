"""A rollout as the trainer holds it: a dict of tensors plus `non_tensor_batch` and `meta_info`
(verl's DataProto fields), read from the safetensors answer of POST /v1/rollouts."""
import json

from . import safetensors
from .tensor import Tensor, convert


class Rollout(dict):
    """Tensors by name (`responses`, `latents_clean`, `all_latents`, `rollout_log_probs`, ...).

    len() is the number of samples, as for verl's DataProto (not the number of tensors).
    """

    def __init__(self, tensors, non_tensor_batch, meta_info):
        super().__init__(tensors)
        self.non_tensor_batch = non_tensor_batch
        self.meta_info = meta_info

    @property
    def batch(self):
        return dict(self)

    def __len__(self):
        first = next(iter(self.values()), None)
        if first is not None:
            return int(first.shape[0])
        col = next(iter(self.non_tensor_batch.values()), [])
        return len(col)

    @classmethod
    def from_safetensors(cls, data, return_type):
        metadata, tensors = safetensors.parse(data)
        return cls(
            {k: convert(t, return_type) for k, t in tensors.items()},
            json.loads(metadata.get('non_tensor_batch', '{}')),
            json.loads(metadata.get('meta_info', '{}')),
        )

    def to_dataproto(self):
        """verl's DataProto of this rollout (needs verl, torch and numpy): tensors in `batch` (a
        TensorDict of batch size len(self)), each non-tensor column an object array of one entry
        per sample (list-valued entries stay lists), `meta_info` a copy."""
        import numpy as np
        import torch
        from verl import DataProto

        tensors = {k: _torch_tensor(torch, np, v) for k, v in self.items()}
        non_tensors = {}
        for k, values in self.non_tensor_batch.items():
            arr = np.empty(len(values), dtype=object)  # item by item: equal-length lists stay objects
            for i, v in enumerate(values):
                arr[i] = v
            non_tensors[k] = arr
        return DataProto.from_dict(tensors=tensors, non_tensors=non_tensors, meta_info=json.loads(json.dumps(self.meta_info)))


def _torch_tensor(torch, np, value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Tensor):  # return_type='tensor': through torch itself (bf16 kept)
        return convert(value, 'torch')
    return torch.from_numpy(np.ascontiguousarray(value))


def score_args(rollout):
    """computeLogProbs' arguments from a rollout with captured latents (the trainer's
    recomputation: on the rollout's own weights the log-probs come back bit for bit)."""
    def need(key):
        if key not in rollout:
            raise KeyError(f'the rollout has no {key} (ask capture: {{"latents": True}})')
        return rollout[key]

    def meta(key):
        if key not in rollout.meta_info:
            raise KeyError(f'meta_info.{key} is missing' + (' (it differs between samples: score each setting separately)' if key in rollout.non_tensor_batch else ''))
        return rollout.meta_info[key]

    args = {
        'allLatents': need('all_latents'),
        'allTimesteps': rollout.get('all_timesteps'),
        'windowStarts': rollout.non_tensor_batch.get('sde_window_start'),
        'promptEmbeds': need('prompt_embeds'),
        'pooledPromptEmbeds': need('pooled_prompt_embeds'),
        'negativePromptEmbeds': rollout.get('negative_prompt_embeds'),
        'negativePooledPromptEmbeds': rollout.get('negative_pooled_prompt_embeds'),
        'guidanceScale': meta('guidance_scale'),
        'sdeType': meta('sde_type'),
        'noiseLevel': meta('noise_level'),
        'sigmas': meta('sigmas'),
    }
    return {k: v for k, v in args.items() if v is not None}
