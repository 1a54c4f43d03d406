"""Figures of a finished or running run: finite vs twin over training time.

The figures are built from the run folder's `metrics.jsonl`, one JSON object
per logged step, so they can be redrawn at any time with `twinzoo report`.
"""

import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

logger = logging.getLogger(__name__)


def read_history(path: Path, last_step: int | None = None) -> list[dict]:
    """Read `metrics.jsonl`, skipping a torn last line and steps after `last_step`."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("Skipping an incomplete line in %s", path)
            continue
        if last_step is None or row["step"] <= last_step:
            rows.append(row)
    return rows


def metric_names(history: list[dict]) -> list[tuple[str, str]]:
    """Return the (split, metric) pairs that have both a finite and a twin value."""
    pairs = []
    for key in history[-1]:
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "twin":
            pairs.append((parts[0], parts[1]))
    return sorted(pairs)


def make_figures(history: list[dict], title: str) -> dict[str, plt.Figure]:
    """Return one figure per split: finite mean, twin and every member per metric."""
    if not history:
        return {}
    times = [row["train_time"] for row in history]
    by_split: dict[str, list[str]] = {}
    for split, metric in metric_names(history):
        by_split.setdefault(split, []).append(metric)

    figures = {}
    for split, metrics in by_split.items():
        fig, axes = plt.subplots(
            1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False
        )
        for ax, metric in zip(axes[0], metrics):
            _plot_members(ax, history, times, f"{split}/{metric}")
            ax.plot(
                times,
                [r[f"{split}/{metric}/finite_mean"] for r in history],
                label="finite ensemble mean",
            )
            ax.plot(
                times,
                [r[f"{split}/{metric}/twin"] for r in history],
                "--",
                label="twin",
            )
            ax.set_xlabel("training time t = lr x steps")
            ax.set_ylabel(metric)
            ax.set_title(f"{title}: {split} {metric}")
        axes[0][0].legend(fontsize="small")
        fig.tight_layout()
        figures[split] = fig

    distance_keys = sorted(
        k for k in history[-1] if k.endswith("/twin_distance/relative")
    )
    if distance_keys:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for key in distance_keys:
            ax.plot(times, [r[key] for r in history], label=key.split("/")[0])
        ax.set_xlabel("training time t = lr x steps")
        ax.set_ylabel("|finite mean - twin| / |twin| (RMS)")
        ax.set_title(f"{title}: distance to the twin")
        ax.legend(fontsize="small")
        fig.tight_layout()
        figures["twin_distance"] = fig
    return figures


def _plot_members(ax, history: list[dict], times: list[float], key: str) -> None:
    if "members" not in history[-1] or key not in history[-1]["members"]:
        return
    count = len(history[-1]["members"][key])
    for member in range(count):
        values = [row["members"][key][member] for row in history]
        ax.plot(
            times,
            values,
            color="0.75",
            linewidth=0.8,
            label="members" if member == 0 else None,
        )


def save_figures(figures: dict[str, plt.Figure], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths


def close_figures(figures: dict[str, plt.Figure]) -> None:
    for fig in figures.values():
        plt.close(fig)


def report_run(run_dir: Path) -> list[Path]:
    """Draw the figures of every run under `run_dir` into its `plots/` folder.

    `run_dir` is one model's run folder (with `metrics.jsonl`) or an
    experiment folder that contains several.
    """
    folders = (
        [run_dir]
        if (run_dir / "metrics.jsonl").exists()
        else sorted(p.parent for p in run_dir.glob("*/metrics.jsonl"))
    )
    paths = []
    for folder in folders:
        history = read_history(folder / "metrics.jsonl")
        figures = make_figures(history, folder.name)
        paths.extend(save_figures(figures, folder / "plots"))
        close_figures(figures)
        logger.info("Wrote %d figures for %s", len(figures), folder)
    return paths
