"""Naive loop twins of DenseR's math, written straight from the definitions in DEVELOPERS.md.

Slow on purpose: one Python loop per group, completion, reference and token. The vectorised package
code must agree with these to 1e-5.
"""
import math

import torch


def naive_window_max(query, query_mask, reference, reference_mask, window_size):
    "m_r(t) for one query (T, D) against one reference (S, D); 0 on invalid query tokens."
    lq, lr = int(query_mask.sum()), int(reference_mask.sum())
    out = torch.zeros(query.shape[0], dtype=torch.float64)
    for t in range(query.shape[0]):
        if not query_mask[t]:
            continue
        center = (t * lr) // max(lq, 1)
        best = 0.0
        for s in range(center - window_size, center + window_size + 1):
            if 0 <= s < reference.shape[0] and reference_mask[s]:
                q, r = query[t].double(), reference[s].double()
                cos = float(q @ r / (max(q.norm(), 1e-12) * max(r.norm(), 1e-12)))
                best = max(best, cos)
        out[t] = best
    return out


def naive_token_weights(hidden, advantages, mask, num_generations, window_size=5, alpha_cross=1.0,
                        alpha_within=1.0, beta=1.0):
    "(weights (B, T), cross (B,), within (B,)) by the definition, group by group, token by token."
    batch, length, _ = hidden.shape
    weights = torch.ones(batch, length, dtype=torch.float64)
    cross_mean = torch.full((batch,), math.nan, dtype=torch.float64)
    within_mean = torch.full((batch,), math.nan, dtype=torch.float64)
    for start in range(0, batch, num_generations):
        rows = range(start, start + num_generations)
        positive = {i: bool(advantages[i] >= 0) for i in rows}
        if len(set(positive.values())) < 2:
            continue
        for i in rows:
            valid = [t for t in range(length) if mask[i, t]]
            if not valid:
                continue
            sims = {r: naive_window_max(hidden[i], mask[i], hidden[r], mask[r], window_size) for r in rows if r != i}
            opposite = [r for r in sims if positive[r] != positive[i]]
            peers = [r for r in sims if positive[r] == positive[i]]
            cross = {t: 1 - sum(float(sims[r][t]) for r in opposite) / len(opposite) for t in valid}
            within = {t: (1 - sum(float(sims[r][t]) for r in peers) / len(peers)) if peers else 1.0 for t in valid}
            raw = {t: alpha_cross * cross[t] + alpha_within * within[t] for t in valid}
            mean = sum(raw.values()) / len(valid)
            if mean > 1e-6:
                for t in valid:
                    weights[i, t] = (1 - beta) + beta * raw[t] / mean
            cross_mean[i] = sum(cross.values()) / len(valid)
            within_mean[i] = sum(within.values()) / len(valid)
    return weights, cross_mean, within_mean
