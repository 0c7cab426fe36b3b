"""Score a run from stored features: per-pair values with torchmetrics, aggregates with bootstrap
intervals, and the set-level metrics (FID, PRD, precision/recall) against the protocol's real faces."""

from __future__ import annotations

import warnings
from collections import defaultdict
from operator import attrgetter

import numpy as np
import torch
from scipy.stats import bootstrap

from swapbench import metrics
from swapbench.bench import layout
from swapbench.bench.stages import Evaluator, PairFeatures
from swapbench.bench.trainer import loader, make_trainer

BOOTSTRAP_BATCH = 100


def score(run_id, protocol, ready, swaps, crops, backends, store, cfg):
    """Per-pair values, aggregates and curves of a run, written to the store (replacing older ones)."""
    ev = cfg["face"]["eval_convention"]
    index = {p.pair_id: i for i, p in enumerate(protocol.pairs)}
    # One array per batch entry over the ready pairs (not a dict of tensors per pair, whose overhead
    # alone was ~10 kB a pair with the four per-pair families).
    columns = {"pair_index": np.array([index[p.pair_id] for p in ready], dtype=np.int64)}
    metric_objs, inputs, failures = {}, {}, []
    swapped = {p.pair_id: swaps[p.pair_id] for p in ready if p.pair_id in swaps and swaps[p.pair_id].ok}
    shas = {s.image_sha for s in swapped.values()}
    shas |= {crops[k, ev].sha for p in ready for k in (p.source, p.target)}
    shas |= {crops[k, ev].sha for k in protocol.sources() if crops[k, ev].ok}
    for family, backend in backends.items():
        spec = metrics.FAMILIES[family]
        if spec.compares_with == "reference":
            continue
        side = attrgetter(spec.compares_with)  # the pair's image the swap is compared with
        feats = store.features(backend.feature_name, shas)
        context = {}
        if spec.retrieval:
            gallery_keys = [k for k in protocol.sources() if crops[k, ev].ok and feats[crops[k, ev].sha].ok]
            identity = {name: i for i, name in enumerate(dict.fromkeys(protocol.images[k].identity for k in gallery_keys))}
            context["gallery"] = torch.from_numpy(np.stack([feats[crops[k, ev].sha].vector for k in gallery_keys])) \
                if gallery_keys else torch.zeros(0, backend.dim)
            context["gallery_identity"] = torch.tensor([identity[protocol.images[k].identity] for k in gallery_keys])
            gallery_row = {k: i for i, k in enumerate(gallery_keys)}
            inputs[family] = ("swap", "source_index")
            other = np.zeros(len(ready), dtype=np.int64)
        else:
            inputs[family] = ("swap", spec.compares_with)
            other = np.zeros((len(ready), backend.dim), dtype=np.float32)
        metric_objs[family] = metrics.make_metric(family, **context)
        valid = np.zeros(len(ready), dtype=bool)
        swap_vectors = np.zeros((len(ready), backend.dim), dtype=np.float32)
        for i, p in enumerate(ready):
            swap = swapped.get(p.pair_id)
            reason = None
            if swap is None:
                reason = "no swap"
            elif not feats[swap.image_sha].ok:
                reason = f"swap: {feats[swap.image_sha].reason}"
            elif spec.retrieval and p.source not in gallery_row:
                reason = f"source {p.source}: {feats[crops[p.source, ev].sha].reason}"
            elif not spec.retrieval and not feats[crops[side(p), ev].sha].ok:
                reason = f"{spec.compares_with} {side(p)}: {feats[crops[side(p), ev].sha].reason}"
            valid[i] = reason is None
            if reason is None:
                swap_vectors[i] = feats[swap.image_sha].vector
            if spec.retrieval:
                other[i] = gallery_row.get(p.source, 0)
            elif feats[crops[side(p), ev].sha].ok:
                other[i] = feats[crops[side(p), ev].sha].vector
            if reason is not None and swap is not None:
                failures.append((p.pair_id, family, reason))
        columns.update({f"{family}/valid": valid, f"{family}/swap": swap_vectors, f"{family}/{inputs[family][1]}": other})
    store.put_failures(run_id, failures)

    evaluator = Evaluator(metric_objs, inputs)
    if ready:
        pairs = PairFeatures({name: torch.from_numpy(column) for name, column in columns.items()})
        make_trainer(cfg).test(evaluator, loader(pairs, cfg), verbose=False)
    pair_ids = [p.pair_id for p in protocol.pairs]
    values, aggregates = [], []
    resamples = cfg["engine"]["bootstrap_resamples"]
    for family, result in evaluator.results.items():
        for column in metrics.FAMILIES[family].columns:
            # torchmetrics squeezes one-element results to 0-d tensors (a run with a single valued pair)
            v = result[column.name].reshape(-1).numpy()
            idx = result["pair_index"].reshape(-1).tolist()
            values += [(pair_ids[i], column.name, float(x)) for i, x in zip(idx, v)]
            if len(v):
                lo, hi = confidence_interval(v, resamples, cfg["engine"]["seed"])
                aggregates.append((column.name, float(v.mean()), lo, hi, len(v), len(protocol.pairs) - len(v),
                                   backends[family].feature_name))
    curves = {}
    for family, backend in backends.items():
        if metrics.FAMILIES[family].compares_with == "reference":
            agg, curve = score_distribution(protocol, ready, swapped, crops, backend, store, cfg)
            aggregates += agg
            curves.update(curve)
    if protocol.clips is not None:  # video: the temporal family, per clip
        from swapbench.bench.clips import score_clips

        clip_values, clip_aggregates, clip_failures = score_clips(run_id, protocol, swaps, crops, backends, store, cfg)
        values += clip_values
        aggregates += clip_aggregates
        store.put_failures(run_id, clip_failures)
    store.put_results(run_id, values, aggregates, curves)


def score_distribution(protocol, ready, swapped, crops, backend, store, cfg):
    """FID, PRD and precision/recall of all swaps against every real face crop of the protocol."""
    from swapbench.metrics import distribution

    ev, name = cfg["face"]["eval_convention"], backend.feature_name
    ref_shas = sorted({crops[k, ev].sha for k in protocol.images if crops[k, ev].ok})
    fake_shas = [swapped[p.pair_id].image_sha for p in ready if p.pair_id in swapped]
    ref = feature_matrix(store, name, ref_shas, backend.dim)
    fake = feature_matrix(store, name, fake_shas, backend.dim)
    if len(ref) <= cfg["fid"]["knn_k"] or len(fake) <= cfg["fid"]["knn_k"]:
        warnings.warn(f"{name}: FID/PRD/precision/recall need more than fid.knn_k={cfg['fid']['knn_k']} real and "
                      f"swapped faces; this run has {len(ref)} and {len(fake)}, so they are not computed")
        return [], {}
    stats = distribution.reference_stats(ref_shas, ref, name, layout.refstats_dir(store.files))
    values, curves = metrics.FAMILIES[backend.family].metric.score(fake, stats, cfg["fid"], cfg["engine"]["seed"])
    n_failed = len(protocol.pairs) - len(fake)
    return [(k, v, None, None, len(fake), n_failed, name) for k, v in values.items()], curves


def feature_matrix(store, backend: str, shas: list[str], dim: int) -> np.ndarray:
    """[n, dim] float32 stored vectors of `shas` that have one, in the order given (a sha may repeat),
    written straight from the store's rows: the one copy the set-level metrics read."""
    rows = defaultdict(list)
    for i, sha in enumerate(shas):
        rows[sha].append(i)
    out, ok = np.zeros((len(shas), dim), dtype=np.float32), np.zeros(len(shas), dtype=bool)
    for sha, feature in store.iter_features(backend, rows):
        if feature.ok:
            out[rows[sha]], ok[rows[sha]] = feature.vector, True
    return out if ok.all() else out[ok]


def confidence_interval(values: np.ndarray, resamples: int, seed: int) -> tuple[float | None, float | None]:
    """95% percentile bootstrap interval of the mean over pairs."""
    if len(values) < 2 or resamples <= 0:
        return None, None
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    # In batches of resamples: memory O(batch x pairs), not O(resamples x pairs); same draws, same interval.
    res = bootstrap((values,), np.mean, n_resamples=resamples, confidence_level=0.95, method="percentile",
                    random_state=np.random.default_rng(seed), batch=BOOTSTRAP_BATCH)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
