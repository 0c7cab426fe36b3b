"""Score a run from stored features: per-pair values with torchmetrics, aggregates with bootstrap
intervals, and the set-level metrics (FID, PRD, precision/recall) against the protocol's real faces."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.stats import bootstrap

from swapbench import metrics
from swapbench.bench import layout
from swapbench.bench.stages import Evaluator, PairFeatures
from swapbench.bench.trainer import loader, make_trainer


def score(run_id, protocol, ready, swaps, crops, backends, store, cfg):
    """Per-pair values, aggregates and curves of a run, written to the store (replacing older ones)."""
    ev = cfg["face"]["eval_convention"]
    index = {p.pair_id: i for i, p in enumerate(protocol.pairs)}
    rows = {p.pair_id: {"pair_index": torch.tensor(index[p.pair_id])} for p in ready}
    metric_objs, inputs, failures = {}, {}, []
    swapped = {p.pair_id: swaps[p.pair_id] for p in ready if p.pair_id in swaps and swaps[p.pair_id].ok}
    shas = {s.image_sha for s in swapped.values()}
    shas |= {crops[k, ev].sha for p in ready for k in (p.source, p.target)}
    shas |= {crops[k, ev].sha for k in protocol.sources() if crops[k, ev].ok}
    for family, backend in backends.items():
        spec = metrics.FAMILIES[family]
        if spec.compares_with == "reference":
            continue
        feats = store.features(backend.feature_name, shas)
        context = {}
        if spec.compares_with == "source":
            gallery_keys = [k for k in protocol.sources() if crops[k, ev].ok and feats[crops[k, ev].sha].ok]
            identity = {name: i for i, name in enumerate(dict.fromkeys(protocol.images[k].identity for k in gallery_keys))}
            context["gallery"] = torch.from_numpy(np.stack([feats[crops[k, ev].sha].vector for k in gallery_keys])) \
                if gallery_keys else torch.zeros(0, backend.dim)
            context["gallery_identity"] = torch.tensor([identity[protocol.images[k].identity] for k in gallery_keys])
            gallery_row = {k: i for i, k in enumerate(gallery_keys)}
            inputs[family] = ("swap", "source_index")
        else:
            inputs[family] = ("swap", "target")
        metric_objs[family] = metrics.make_metric(family, **context)
        for p in ready:
            row = rows[p.pair_id]
            swap = swapped.get(p.pair_id)
            reason = None
            if swap is None:
                reason = "no swap"
            elif not feats[swap.image_sha].ok:
                reason = f"swap: {feats[swap.image_sha].reason}"
            elif spec.compares_with == "source" and p.source not in gallery_row:
                reason = f"source {p.source}: {feats[crops[p.source, ev].sha].reason}"
            elif spec.compares_with == "target" and not feats[crops[p.target, ev].sha].ok:
                reason = f"target {p.target}: {feats[crops[p.target, ev].sha].reason}"
            row[f"{family}/valid"] = torch.tensor(reason is None)
            row[f"{family}/swap"] = torch.from_numpy(feats[swap.image_sha].vector) if reason is None else torch.zeros(backend.dim)
            if spec.compares_with == "source":
                row[f"{family}/source_index"] = torch.tensor(gallery_row.get(p.source, 0))
            else:
                tgt = feats[crops[p.target, ev].sha]
                row[f"{family}/target"] = torch.from_numpy(tgt.vector) if tgt.ok else torch.zeros(backend.dim)
            if reason is not None and swap is not None:
                failures.append((p.pair_id, family, reason))
    store.put_failures(run_id, failures)

    evaluator = Evaluator(metric_objs, inputs)
    if rows:
        make_trainer(cfg).test(evaluator, loader(PairFeatures(list(rows.values())), cfg), verbose=False)
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
    store.put_results(run_id, values, aggregates, curves)


def score_distribution(protocol, ready, swapped, crops, backend, store, cfg):
    """FID, PRD and precision/recall of all swaps against every real face crop of the protocol."""
    from swapbench.metrics import distribution

    ev, name = cfg["face"]["eval_convention"], backend.feature_name
    ref_shas = sorted({crops[k, ev].sha for k in protocol.images if crops[k, ev].ok})
    fake_shas = [swapped[p.pair_id].image_sha for p in ready if p.pair_id in swapped]
    feats = store.features(name, set(ref_shas) | set(fake_shas))
    ref = [feats[s].vector for s in ref_shas if s in feats and feats[s].ok]
    fake = [feats[s].vector for s in fake_shas if s in feats and feats[s].ok]
    if len(ref) <= cfg["fid"]["knn_k"] or len(fake) <= cfg["fid"]["knn_k"]:
        warnings.warn(f"{name}: FID/PRD/precision/recall need more than fid.knn_k={cfg['fid']['knn_k']} real and "
                      f"swapped faces; this run has {len(ref)} and {len(fake)}, so they are not computed")
        return [], {}
    stats = distribution.reference_stats(ref_shas, np.stack(ref), name, layout.refstats_dir(store.files))
    values, curves = distribution.score(np.stack(fake), stats, cfg["fid"], cfg["engine"]["seed"])
    n_failed = len(protocol.pairs) - len(fake)
    return [(k, v, None, None, len(fake), n_failed, name) for k, v in values.items()], curves


def confidence_interval(values: np.ndarray, resamples: int, seed: int) -> tuple[float | None, float | None]:
    """95% percentile bootstrap interval of the mean over pairs."""
    if len(values) < 2 or resamples <= 0:
        return None, None
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    res = bootstrap((values,), np.mean, n_resamples=resamples, confidence_level=0.95, method="percentile",
                    random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
