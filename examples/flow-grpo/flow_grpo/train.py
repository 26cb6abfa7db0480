"""Flow-GRPO on the embedded model with `omni-worker serve` as the only rollout engine.

    python3 -m flow_grpo.train --url http://127.0.0.1:8000 --out DIR [--resume DIR/checkpoint.pt]

Per step: send the weights to the sleeping worker (a new version) -> wake it -> G SDE samples per prompt with a
window of W stochastic steps and their log-probs -> sleep the worker -> reward (scene
classifier) -> group-normalised advantages -> PPO-clip updates with the log-probs recomputed by
PyTorch (plus a KL to the start model) -> next step. Checks on every step: the rollout ran on the
version just sent, and before any update the recomputed log-probs equal the worker's
(max |log-ratio| reported; --ratio-tol fails the run past it).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import time

import numpy as np
import torch

import omni_worker as ow
from omni_ref.samplers import setup_deterministic

from .advantages import group_advantages, informative_fraction
from .bookkeeping import check_rollout, max_abs_log_ratio, rollout_requests, transitions
from .evaluation import evaluate
from .phases import PhaseTimer
from .policy import gaussian_kl, load_classifier, load_transformer, state_dict_f32, transition_log_prob
from .prompts import read_prompt_file, split_prompts
from .reward import score
from .torch_engine import TorchEngine

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="worker", choices=["worker", "torch"],
                    help="worker: omni-worker serve at --url; torch: the same rollouts in PyTorch (baseline)")
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--token", default=os.environ.get("OMNI_WORKER_TOKEN"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "shapes-dit"))
    ap.add_argument("--classifier", default=os.path.join(ROOT, "rewards", "scene-classifier.onnx"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", help="a checkpoint.pt to continue from")
    ap.add_argument("--steps", type=int, default=60, help="training steps in all (a resumed run counts on)")
    ap.add_argument("--stop-at", type=int, help="stop after this step (checkpoint written): to show a resume")
    ap.add_argument("--time-budget", type=float, default=0, help="seconds of training; stop (with a checkpoint) past it")
    ap.add_argument("--final", action="store_true", help="end of the run: evaluate and write the trained weights")
    ap.add_argument("--prompts-per-step", type=int, default=32)
    ap.add_argument("--group", type=int, default=16, help="G samples per prompt")
    ap.add_argument("--window", type=int, default=2, help="W stochastic steps per sample (Flow-GRPO-Fast)")
    ap.add_argument("--window-range", type=int, nargs=2, default=[0, 6])
    ap.add_argument("--noise-level", type=float, default=0.7)
    ap.add_argument("--minibatches", type=int, default=2, help="optimizer steps per rollout batch")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--beta", type=float, default=0.01, help="KL weight (to the start model)")
    ap.add_argument("--clip", type=float, default=1e-4, help="PPO clip range of the ratio")
    ap.add_argument("--adv-clip", type=float, default=5.0)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--reward", default="dense", choices=["dense", "partial", "mixed"], help="flow_grpo/reward.py")
    ap.add_argument("--heldout", type=int, default=64, help="held-out three-object prompts")
    ap.add_argument("--eval-seeds", type=int, default=4,
                    help="ODE samples per held-out prompt at each evaluation (64 x 4 = 256: +-2.6 points at 20%%)")
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--single-prompts", default=os.path.join(ROOT, "python", "results", "prompts_single.txt"))
    ap.add_argument("--sleep-level", type=int, default=1, choices=[0, 1, 2], help="0: the worker never sleeps")
    ap.add_argument("--ratio-tol", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap.parse_args(argv)


class Trainer:
    def __init__(self, args):
        self.args = args
        self.dev = torch.device(args.device)
        self.policy = load_transformer(args.model).to(self.dev)
        if args.engine == "torch":
            self.client = TorchEngine(args.model, self.policy, self.dev)
        else:
            self.client = ow.Client(args.url, args.token, return_type="numpy")
        self.reference = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.classifier = load_classifier(args.classifier).to(self.dev)
        self.opt = torch.optim.AdamW(self.policy.parameters(), lr=args.lr, weight_decay=1e-4)
        self.train_prompts, self.heldout = split_prompts(args.heldout, seed=args.seed)
        self.single = read_prompt_file(args.single_prompts)
        self.timer = PhaseTimer()
        self.step, self.history, self.evals = 0, [], []
        self.version = None
        self.resumed_at = None
        self.rng = random.Random(args.seed + 1)
        self.sync = torch.cuda.synchronize if self.dev.type == "cuda" else None

    # --- checkpoints ---------------------------------------------------------------------
    def save(self, path):
        torch.save({"policy": self.policy.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                    "history": self.history, "evals": self.evals, "rng": self.rng.getstate(),
                    "phase_totals": self.timer.totals, "args": vars(self.args)}, path)

    def load(self, path):
        ck = torch.load(path, map_location=self.dev)
        self.policy.load_state_dict(ck["policy"])
        self.opt.load_state_dict(ck["opt"])
        self.step, self.history, self.evals = ck["step"], ck["history"], ck["evals"]
        self.rng.setstate(ck["rng"])
        self.timer.totals.update(ck["phase_totals"])

    # --- the worker ----------------------------------------------------------------------
    def wake(self):
        if self.args.sleep_level and self.client.is_sleeping():
            with self.timer.phase("sleep_wake"):
                self.client.wake_up()

    def sleep(self):
        if self.args.sleep_level:
            with self.timer.phase("sleep_wake"):
                self.client.sleep(level=self.args.sleep_level)

    def send_weights(self):
        with self.timer.phase("weight_sync"):
            sd = state_dict_f32(self.policy) if self.args.engine == "worker" else None
            res = self.client.update_weights(sd)
        self.version = res["weightsVersion"]

    def classify(self, responses):
        with torch.no_grad():
            s, c, _ = self.classifier(torch.from_numpy(np.ascontiguousarray(responses)).float().to(self.dev))
        return s.cpu().numpy(), c.cpu().numpy()

    # --- one step ------------------------------------------------------------------------
    def rollout(self, prompts, seed):
        a = self.args
        sde = {"type": "sde", "noiseLevel": a.noise_level, "window": {"size": a.window, "range": list(a.window_range)}}
        with self.timer.phase("rollout"):
            r = self.client.generate(rollout_requests(prompts, a.group, seed, sde))
        check_rollout(r, prompts, a.group, seed, self.version, a.window)
        return r

    def train_step(self):
        a = self.args
        prompts = self.rng.sample(self.train_prompts, a.prompts_per_step)
        seed = 1_000_000 + self.step * a.prompts_per_step * a.group
        # New weights go to the sleeping worker first (host memory only), then one wake builds the
        # sessions with them: one session build per step, not one for the old and one for the new.
        self.send_weights()
        self.wake()
        r = self.rollout(prompts, seed)
        self.sleep()
        with self.timer.phase("reward"):
            logits = self.classify(r["responses"])
            rewards, accurate = score(r.non_tensor_batch["prompt"], *logits, reward=a.reward)
            groups = np.repeat(np.arange(len(prompts)), a.group)
            adv = group_advantages(rewards, groups, clip=a.adv_clip)
            partial = score(r.non_tensor_batch["prompt"], *logits, reward="partial")[0]
        with self.timer.phase("training", self.sync):
            stats = self.update(r, adv)
        self.step += 1
        rec = {"step": self.step, "reward_mean": float(rewards.mean()), "partial_credit": float(partial.mean()),
               "accuracy": float(accurate.mean()),
               "informative_groups": informative_fraction(rewards, groups), "weights_version": self.version,
               **stats, "seconds": self.timer.take_step()}
        self.history.append(rec)
        return rec

    def update(self, r, adv):
        a, dev = self.args, self.dev
        tr = transitions(r)
        keys = ("all_latents", "all_timesteps", "prompt_embeds", "pooled_prompt_embeds",
                "negative_prompt_embeds", "negative_pooled_prompt_embeds")
        batch = {k: torch.from_numpy(np.ascontiguousarray(r[k])).to(dev) for k in keys}
        batch["sigma"] = torch.from_numpy(tr["sigma"]).to(dev)
        batch["sigma_next"] = torch.from_numpy(tr["sigma_next"]).to(dev)
        old = torch.from_numpy(np.ascontiguousarray(r["rollout_log_probs"])).to(dev)
        adv_t = torch.from_numpy(adv).to(dev)
        n, W = old.shape
        g, sig1, lvl = tr["guidance_scale"], float(tr["sigma1"]), float(tr["noise_level"])
        # On-policy check: the weights that sampled are the weights now, so the ratio must be 1.
        self.policy.eval()
        with torch.no_grad():
            new0 = torch.stack([transition_log_prob(self.policy, batch, j, g, sig1, lvl)[0] for j in range(W)], 1)
        ratio_err = max_abs_log_ratio(new0.cpu().numpy(), old.cpu().numpy())
        if ratio_err > a.ratio_tol:
            raise RuntimeError(f"step {self.step}: max |log-ratio| {ratio_err:.3g} before any update exceeds "
                               f"{a.ratio_tol:g}: the trainer's log-probs do not reproduce the worker's")
        self.policy.train()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.step))
        losses, kls, clipped = [], [], []
        for mb in perm.chunk(a.minibatches):
            mb = mb.to(dev)
            sub = {k: v[mb] for k, v in batch.items()}
            self.opt.zero_grad(set_to_none=True)
            for j in range(W):  # gradients accumulate over the window's steps
                lp, mean, s = transition_log_prob(self.policy, sub, j, g, sig1, lvl)
                with torch.no_grad():
                    _, mean_ref, _ = transition_log_prob(self.reference, sub, j, g, sig1, lvl)
                ratio = torch.exp(lp - old[mb, j])
                A = adv_t[mb]
                pg = torch.maximum(-A * ratio, -A * torch.clamp(ratio, 1 - a.clip, 1 + a.clip)).mean()
                kl = gaussian_kl(mean, mean_ref, s).mean()
                loss = (pg + a.beta * kl) / W
                loss.backward()
                losses.append(float(pg))
                kls.append(float(kl))
                clipped.append(float(((ratio - 1).abs() > a.clip).float().mean()))
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), a.max_grad_norm)
            self.opt.step()
        return {"max_abs_log_ratio": ratio_err, "policy_loss": float(np.mean(losses)),
                "kl_to_start": float(np.mean(kls)), "clip_fraction": float(np.mean(clipped))}

    def finish(self):
        """The trained weights rounded to float16 (the committed file, half the size), sent to the
        worker as float16 (loadWeights converts), and the final evaluation on exactly those."""
        half = {k: v.astype(np.float16) for k, v in state_dict_f32(self.policy).items()}
        ow_tensors = {k: ow.as_tensor(v, k) for k, v in half.items()}
        path = os.path.join(self.args.out, "transformer-flow-grpo.safetensors")
        with open(path, "wb") as f:
            f.write(ow.safetensors.serialize(ow_tensors, {"format": "pt", "trained_steps": str(self.step)}))
        self.wake()
        with self.timer.phase("weight_sync"):
            self.version = self.client.update_weights(half)["weightsVersion"]
        print("eval", json.dumps(self.evaluate("final")), flush=True)
        from omni_ref.png import grid, write_png
        from .evaluation import sample_images
        images = sample_images(self.client, self.heldout[:8], 8, seed=9_000_000)
        write_png(os.path.join(self.args.out, "grid-final.png"), grid(images, 8, scale=3))

    def evaluate(self, label):
        self.wake()
        if self.version is None:
            self.send_weights()
        with self.timer.phase("eval"):
            res = evaluate(self.client, self.classify, self.heldout, self.single, self.args.eval_seeds)
        res.update(step=self.step, label=label, weights_version=self.version)
        self.evals.append(res)
        return res


def main(argv=None):
    a = parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    setup_deterministic() if a.device == "cpu" else None
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 on both sides: ratio 1 within 1e-4
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(a.seed)
    t = Trainer(a)
    if a.resume:
        t.load(a.resume)
        t.resumed_at = t.step
        print(f"resumed at step {t.step} from {a.resume}", flush=True)
    with open(os.path.join(a.out, "heldout_prompts.txt"), "w") as f:
        f.write("\n".join(t.heldout) + "\n")
    if not t.evals:
        print("eval", json.dumps(t.evaluate("start")), flush=True)
    t0 = time.perf_counter()
    stop = min(a.steps, a.stop_at or a.steps)
    while t.step < stop:
        rec = t.train_step()
        print(json.dumps(rec), flush=True)
        if t.step % a.eval_every == 0 and t.step < a.steps:
            print("eval", json.dumps(t.evaluate(f"step {t.step}")), flush=True)
        if a.time_budget and time.perf_counter() - t0 > a.time_budget:
            print(f"time budget {a.time_budget:.0f}s reached at step {t.step}", flush=True)
            break
    t.save(os.path.join(a.out, "checkpoint.pt"))
    if a.final:
        t.finish()
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump({"history": t.history, "evals": t.evals, "phase_totals": t.timer.totals, "args": vars(a),
                   "resumed_at": t.resumed_at}, f, indent=1)
    t.wake()


if __name__ == "__main__":
    main()
