"""The Python client's share of the host path: a rollout answer parsed into numpy arrays, from a
read-only body (bytes: each tensor copied once) and from a writable one (a bytearray, as the client
now reads answers: the arrays are views of it). One process, alternated, median of --reps.

    node bin/run-ts.js bench/host-path.ts --reps 1 --save-rollout /tmp/rollout.safetensors
    PYTHONPATH=clients/python python3 bench/rollout-parse.py /tmp/rollout.safetensors
"""
import argparse
import statistics
import time

from omni_worker.rollout import Rollout

parser = argparse.ArgumentParser()
parser.add_argument('path')
parser.add_argument('--reps', type=int, default=7)
args = parser.parse_args()
with open(args.path, 'rb') as f:
    body = f.read()
times = {'bytes (copied)': [], 'bytearray (viewed)': []}
for _ in range(args.reps):
    for name, make in (('bytes (copied)', lambda: bytes(body)), ('bytearray (viewed)', lambda: bytearray(body))):
        data = make()
        t0 = time.perf_counter()
        rollout = Rollout.from_safetensors(data, 'numpy')
        times[name].append(time.perf_counter() - t0)
print(f'{len(body) / 1e6:.1f} MB, {len(rollout)} samples')
for name, ts in times.items():
    print(f'{name}: {1000 * statistics.median(ts):.2f} ms')
