"""omni_worker: a Python trainer's client of `omni-worker serve` (standard library only; numpy
and torch used when present)."""
from .client import Client, OmniWorkerError
from .rollout import Rollout, score_args
from .tensor import Tensor, as_tensor, load_file
from . import safetensors

__all__ = ["Client", "OmniWorkerError", "Rollout", "Tensor", "as_tensor", "load_file", "safetensors", "score_args"]
__version__ = '0.1.0'
