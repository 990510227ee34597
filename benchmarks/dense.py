"""DenseR token weights in the dense formulation, for benchmarking only.

The same algorithm as `denser.weights.token_weights`, written the way the public reference implementation
(Hritikbansal/DenseR) computes it: a Python loop over the rollouts of each group, and for each rollout the
full `(G-1, T, T)` cosine-similarity matrix and `(G-1, T, T)` position-distance matrix against the other
rollouts of its group, masked to the proportional window and reduced with a max. Written from the
definition for this benchmark (no code copied); the package never imports it.
"""
import math

import torch


def dense_token_weights(
    hidden_states: torch.Tensor,  # (B, T, D) policy states of every completion
    advantages: torch.Tensor,  # (B,) GRPO advantages; class = advantage >= 0
    completion_mask: torch.Tensor,  # (B, T) 1 for tokens to weight
    num_generations: int,  # G, consecutive completions per prompt
    window_size: int = 5,  # w, half-width of the proportional window
    alpha_cross: float = 1.0,  # weight of cross-class divergence
    alpha_within: float = 1.0,  # weight of within-class divergence
    beta: float = 1.0,  # blend with uniform weights
    rollouts: list[int] | None = None,  # only these rows (for timing a subset); all rows by default
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    "(weights (B, T), cross (B,), within (B,)) from dense T x T similarity and distance matrices per rollout."
    batch, length, _ = hidden_states.shape
    mask = completion_mask.bool()
    precision = torch.promote_types(hidden_states.dtype, torch.float32)  # float32, float64 for float64 states
    normed = torch.nn.functional.normalize(hidden_states.to(precision), dim=-1)
    lengths = mask.sum(-1)
    positions = torch.arange(length)
    weights = torch.ones(batch, length, dtype=precision)
    cross_mean = torch.full((batch,), math.nan, dtype=precision)
    within_mean = torch.full((batch,), math.nan, dtype=precision)
    for start in range(0, batch, num_generations):
        group = list(range(start, start + num_generations))
        positive = advantages[start:start + num_generations] >= 0
        if positive.all() or not positive.any():
            continue
        for row in group:
            if rollouts is not None and row not in rollouts:
                continue
            others = torch.tensor([other for other in group if other != row and mask[other].any()],  # no empty references
                                  dtype=torch.long)
            similarity = torch.einsum("td,rsd->rts", normed[row], normed[others])  # (G-1, T, T)
            centers = positions[:, None] * lengths[others][:, None, None] // lengths[row].clamp_min(1)  # (G-1, T, 1)
            distance = (positions[None, None, :] - centers).abs()  # (G-1, T, T)
            window = (distance <= window_size) & mask[others][:, None, :]
            best = similarity.masked_fill(~window, -math.inf).amax(-1).clamp_min(0.0)  # (G-1, T)
            same = (advantages[others] >= 0) == (advantages[row] >= 0)
            cross = 1 - best[~same].mean(0) if (~same).any() else torch.ones(length, dtype=precision)
            within = 1 - best[same].mean(0) if same.any() else torch.ones(length, dtype=precision)
            valid = mask[row]
            if not valid.any():
                continue
            raw = alpha_cross * cross + alpha_within * within
            mean = raw[valid].mean()
            normalised = raw / mean if mean > 1e-6 else torch.zeros(length, dtype=precision)  # an all-zero divergence stays 0
            weights[row] = torch.where(valid, (1 - beta) + beta * normalised, 1.0)
            cross_mean[row] = cross[valid].mean()
            within_mean[row] = within[valid].mean()
    return weights, cross_mean, within_mean
