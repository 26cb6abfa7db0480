"""The trainer's side of bench/serve.ts: timings measured inside Python (its start-up excluded),
printed as one JSON line. Uses clients/python only (numpy when present).

  serve-client.py URL rollout SAMPLES SEED               seconds of one generate call
  serve-client.py URL concurrent PROCS SAMPLES ROUNDS     PROCS processes, ROUNDS calls each, at once
  serve-client.py URL upload FILE BUCKET_BYTES            update_weights of FILE's tensors as arrays
  serve-client.py URL path FILE                           update_weights_from_path(FILE)
  serve-client.py commands                                the same, one `URL MODE ARGS` per stdin line
"""
import json
import multiprocessing as mp
import os
import sys
import time

# numpy's OpenBLAS threads spin for a while after its import, on the cores the server measured
# here needs (a client process is started per measure, so that spin lands in the timed window).
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'clients', 'python'))
import omni_worker as ow  # noqa: E402

PROMPT = 'a red circle at the top left on a white background'


def rollout(url, samples, seed):
    with ow.Client(url) as c:
        t0, c0 = time.perf_counter(), time.process_time()
        r = c.generate([{'prompt': PROMPT, 'num_outputs_per_prompt': samples, 'seed': seed}])
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(r) == samples
    return {'seconds': seconds, 'cpuSeconds': cpu}


def _worker(url, samples, rounds, seed, barrier, out):
    with ow.Client(url) as c:
        c.health()  # connection open before the clock starts
        barrier.wait()
        for k in range(rounds):
            c.generate([{'prompt': PROMPT, 'num_outputs_per_prompt': samples, 'seed': seed + 1000 * k}])
        out.put(time.perf_counter())


def concurrent(url, procs, samples, rounds):
    ctx = mp.get_context('fork')
    barrier, out = ctx.Barrier(procs + 1), ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(url, samples, rounds, 100 * i, barrier, out)) for i in range(procs)]
    for p in ps:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    ends = [out.get() for _ in ps]
    for p in ps:
        p.join()
    seconds = max(ends) - t0
    return {'seconds': seconds, 'samples': procs * samples * rounds, 'samplesPerSec': procs * samples * rounds / seconds}


_loaded = {}


def upload(url, path, bucket_bytes):
    if path not in _loaded:  # numpy arrays when numpy imports: the trainer's tensors
        _loaded[path] = ow.load_file(path)
    state_dict = _loaded[path]
    nbytes = sum(getattr(v, 'nbytes', 0) for v in state_dict.values())
    with ow.Client(url) as c:
        t0 = time.perf_counter()
        c.update_weights(state_dict, bucket_bytes=bucket_bytes or None)
        seconds = time.perf_counter() - t0
    return {'seconds': seconds, 'bytes': nbytes}


def from_path(url, path):
    with ow.Client(url) as c:
        t0 = time.perf_counter()
        res = c.update_weights_from_path(path)
        seconds = time.perf_counter() - t0
    return {'seconds': seconds, 'bytes': res['bytes']}


def commands():
    """One command per line on stdin (`URL MODE ARGS...`), one JSON answer per line: a trainer's
    long-lived process. Starting a process per measure would fork the server's process before
    each, and a fork write-protects every page of the forking process: its next writes into
    memory it reuses (freed tensors) fault again, inside the timed window."""
    for line in sys.stdin:
        print(json.dumps(run(*line.split())), flush=True)


def run(url, mode, *rest):
    if mode == 'rollout':
        return rollout(url, int(rest[0]), int(rest[1]))
    if mode == 'concurrent':
        return concurrent(url, int(rest[0]), int(rest[1]), int(rest[2]))
    if mode == 'upload':
        return upload(url, rest[0], int(rest[1]))
    return from_path(url, rest[0])


if __name__ == '__main__':
    if sys.argv[1:] == ['commands']:
        commands()
    else:
        print(json.dumps(run(*sys.argv[1:])))
