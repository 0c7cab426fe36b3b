"""Results stores written directly, without a run: complete runs with chosen per-pair and set-level values."""

import numpy as np

PAIRS = 12
CONFIG = {"engine": {"bootstrap_resamples": 100, "seed": 0}, "fid": {"min_samples": 2048}, "protocol": "synthetic"}


def add_run(store, method, per_pair=None, set_level=None, failed=(), set_backend="fid_helper_inception"):
    """A complete run: per_pair {metric: {pair: value}}, set_level {metric: (value, n)} from set_backend, failed pair ids."""
    run_id = f"run-{method}"
    store.start_run(run_id, "synthetic", "hash0", method, True, CONFIG, {"protocol": {"pairs": PAIRS}, "git_revision": "t"})
    store.put_failures(run_id, [(p, "faces", "target: no face found") for p in failed])
    rows, agg = [], []
    for metric, values in (per_pair or {}).items():
        rows += [(p, metric, v) for p, v in values.items()]
        v = np.array(list(values.values()))
        agg.append((metric, float(v.mean()), None, None, len(v), PAIRS - len(v), "mediapipe_pose"))
    for metric, (value, n) in (set_level or {}).items():
        agg.append((metric, value, None, None, n, PAIRS - n, set_backend))
    store.put_results(run_id, rows, agg)
    store.finish_run(run_id)


def pairs(offset=0.0):
    return {f"t{i:02d}__s{i:02d}": 5.0 + i + offset for i in range(PAIRS)}
