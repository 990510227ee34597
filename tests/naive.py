"""Test oracles written independently of the package: the public reference's semantics in its own dense shape, and
KTAE's key-token bonus by its definition.

The loop and dense twins of DenseR's weights live in the package (`denser.reference`, nbs/01a_reference.ipynb), where
a reader of the notebooks sees them; the vectorised code must agree with all of them to 1e-5.
"""
import math

import torch


def reference_oracle(hidden, advantages, mask, num_generations, window_size=5, alpha_cross=1.0, alpha_within=1.0,
                     beta=1.0):
    """The public reference's semantics in its own shape: per group, one dense (N, Tq, Tr) similarity per query.

    Written independently of the package from the reference's description: references with no valid token
    are dropped (divergence 1 if none is left), the window centre is computed in floating point, the
    combined divergence is divided by clamp(mean, 1e-8), no clamping of divergences. Returns (B, T) weights;
    only valid tokens of groups with contrast are comparable (the reference leaves padding unspecified).
    """
    hidden, mask = hidden.double(), mask.bool()
    batch, length, _ = hidden.shape
    weights = torch.ones(batch, length, dtype=torch.float64)
    unit = torch.nn.functional.normalize(hidden, dim=-1)

    def divergence(i, refs):
        refs = [r for r in refs if mask[r].any()]
        if not refs:
            return torch.ones(length, dtype=torch.float64)
        sims = torch.einsum("qd,nrd->nqr", unit[i], unit[refs])
        lq = max(int(mask[i].sum()), 1)
        lr = mask[refs].sum(-1).clamp_min(1).double()
        centers = (torch.arange(length, dtype=torch.float64)[None, :] * lr[:, None] / lq).long()
        inside = ((torch.arange(length)[None, None, :] - centers[:, :, None]).abs() <= window_size) & mask[refs][:, None, :]
        best = sims.masked_fill(~inside, -math.inf).amax(-1).clamp_min(0.0)
        return 1.0 - best.mean(0)

    for start in range(0, batch, num_generations):
        rows = list(range(start, start + num_generations))
        pos = [r for r in rows if advantages[r] >= 0]
        neg = [r for r in rows if advantages[r] < 0]
        if not pos or not neg:
            continue
        for i in rows:
            same, other = (pos, neg) if advantages[i] >= 0 else (neg, pos)
            peers = [r for r in same if r != i]
            cross = divergence(i, other)
            within = divergence(i, peers) if peers else torch.ones(length, dtype=torch.float64)
            combined = alpha_cross * cross + alpha_within * within
            valid = mask[i]
            if valid.any():
                combined = combined / combined[valid].mean().clamp_min(1e-8)
                weights[i, valid] = ((1 - beta) + beta * combined)[valid]
    return weights


def naive_ktae_bonus(ids, mask, correct, alpha=1.0, beta_ig=1.0, gamma_tf=1.0, top=1.0, k1=2.0, b=0.5):
    """KTAE's key-token bonus (G, T) by its definition, token id by token id, with scipy's Fisher test."""
    from scipy.stats import fisher_exact

    group, length = ids.shape
    bonus = torch.zeros(group, length, dtype=torch.float64)
    rows = [[int(ids[i, t]) for t in range(length) if mask[i, t]] for i in range(group)]
    good = [i for i in range(group) if correct[i]]
    bad = [i for i in range(group) if not correct[i]]
    if not good or not bad or not any(rows):
        return bonus
    tokens_good = sum(len(rows[i]) for i in good)
    tokens_bad = sum(len(rows[i]) for i in bad)
    average = (tokens_good + tokens_bad) / 2

    def bm25(count, total):
        f = count / max(total, 1)
        return f * (k1 + 1) / (f + k1 * (1 - b + b * total / average))

    def h2(*counts):
        n = sum(counts)
        return -sum(c / n * math.log2(c / n) for c in counts if c > 0) if n else 0.0

    kt = {}
    for token in {t for row in rows for t in row}:
        a = sum(token in rows[i] for i in good)
        c_ = sum(token in rows[i] for i in bad)
        table = (a, c_, len(good) - a, len(bad) - c_)
        p = fisher_exact([[table[0], table[1]], [table[2], table[3]]]).pvalue
        fisher = math.exp(-2 * p) if p < 1 - 1e-12 else 0.0
        n = sum(table)
        gain = h2(table[0] + table[2], table[1] + table[3]) - (
            (table[0] + table[1]) / n * h2(table[0], table[1]) + (table[2] + table[3]) / n * h2(table[2], table[3]))
        cohen = math.asin(math.sqrt(a / len(good))) - math.asin(math.sqrt(c_ / len(bad)))
        tf_good = bm25(sum(row.count(token) for i, row in enumerate(rows) if i in good), tokens_good)
        tf_bad = bm25(sum(row.count(token) for i, row in enumerate(rows) if i in bad), tokens_bad)
        x = cohen + gamma_tf * (tf_good / (tf_bad + 1e-5) - tf_bad / (tf_good + 1e-5))
        score = (alpha * fisher + beta_ig * gain) * x / (alpha + beta_ig)
        kt[token] = math.tanh(score / 2) * top  # (sigmoid - 1/2) * 2, without overflow
    for i in range(group):
        for t in range(length):
            if mask[i, t]:
                bonus[i, t] = kt[int(ids[i, t])]
    return bonus
