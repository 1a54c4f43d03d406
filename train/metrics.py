"""Metrics of the finite ensemble and the twin at one training step.

Keys are `{split}/{metric}/{side}` with the sides

- `finite_mean`: the ensemble mean's outputs (the finite estimate of the twin),
- `twin`: the twin's mean prediction,
- `members_mean`, `members_std`, `members_min`, `members_max`: the spread of
  the per-member metric over the members,

so a W&B chart of one `{split}/{metric}` section shows finite and twin side
by side. Distances between ensemble mean and twin use the root mean square
over points and outputs.
"""

import numpy as np

METRIC_SIDES = ("finite_mean", "twin")
MEMBER_SIDES = ("members_mean", "members_std", "members_min", "members_max")


def mse(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Return `0.5 * mean((f - y)^2)` over the last two axes, as `mse_loss` does."""
    return 0.5 * np.mean((outputs - targets) ** 2, axis=(-2, -1))


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return the fraction of points whose largest output is the true class."""
    return np.mean(np.argmax(outputs, axis=-1) == labels, axis=-1)


def mean_absolute_error(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.mean(np.abs(outputs - targets), axis=(-2, -1))


def rms_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def quality_metrics(
    outputs: np.ndarray, targets: np.ndarray, labels: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Return loss and accuracy (classification) or MAE (`labels` is None)."""
    values = {"loss": mse(outputs, targets)}
    if labels is None:
        values["mae"] = mean_absolute_error(outputs, targets)
    else:
        values["accuracy"] = accuracy(outputs, labels)
    return values


def split_metrics(
    split: str,
    members: np.ndarray,
    twin: np.ndarray | None,
    targets: np.ndarray | None,
    labels: np.ndarray | None,
) -> dict[str, float]:
    """Return the metrics of one split for members (M, N, K) and twin (N, K).

    Splits without targets (off-manifold inputs) get the distance only.
    """
    finite_mean = members.mean(axis=0)
    values: dict[str, float] = {}

    if targets is not None:
        for metric, per_member in quality_metrics(members, targets, labels).items():
            values[f"{split}/{metric}/members_mean"] = float(per_member.mean())
            values[f"{split}/{metric}/members_std"] = float(per_member.std())
            values[f"{split}/{metric}/members_min"] = float(per_member.min())
            values[f"{split}/{metric}/members_max"] = float(per_member.max())
        for metric, value in quality_metrics(finite_mean, targets, labels).items():
            values[f"{split}/{metric}/finite_mean"] = float(value)
        if twin is not None:
            for metric, value in quality_metrics(twin, targets, labels).items():
                values[f"{split}/{metric}/twin"] = float(value)

    if twin is not None:
        distance = rms_distance(finite_mean, twin)
        scale = float(np.sqrt(np.mean(twin**2)))
        values[f"{split}/twin_distance/rms"] = distance
        values[f"{split}/twin_distance/relative"] = (
            distance / scale if scale > 0 else float("nan")
        )
    return values


def member_values(
    split: str, members: np.ndarray, targets: np.ndarray, labels: np.ndarray | None
) -> dict[str, list[float]]:
    """Return each member's loss and accuracy (or MAE) as lists, for the report."""
    return {
        f"{split}/{metric}": [float(v) for v in per_member]
        for metric, per_member in quality_metrics(members, targets, labels).items()
    }


def invariance_error(
    mean_outputs: np.ndarray, transformed_outputs: list[np.ndarray]
) -> float:
    """Return max over group elements of ||f(g x) - f(x)|| / ||f(x)|| on a batch.

    `transformed_outputs[g]` are the ensemble mean's outputs on the inputs
    transformed by element g; norms are Frobenius norms over the batch.
    """
    norm = float(np.linalg.norm(mean_outputs))
    if norm == 0:
        return 0.0
    return max(
        float(np.linalg.norm(f - mean_outputs)) / norm for f in transformed_outputs
    )
