"""Weights & Biases logging: one run per model, one group per experiment.

Finite and twin values share one run and one key prefix,
`{split}/{metric}/finite_mean` next to `{split}/{metric}/twin`, so W&B's
default workspace puts them in the same section. Each run also gets, at the
end, one line chart per `{split}/{metric}` with both curves over training
time (`wandb.plot.line_series`) and the report's figures as images. The x
axis of every scalar is `train_time` = learning rate x steps.

Offline is the default: the run is written under `<run folder>/wandb` and can
be uploaded later with `wandb sync`.
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


class WandbLogger:
    """A thin wrapper around one W&B run; `mode="disabled"` logs nothing."""

    def __init__(
        self,
        mode: str,
        folder: Path,
        project: str,
        group: str,
        name: str,
        config: dict,
    ):
        self.run = None
        if mode == "disabled":
            return

        import wandb

        folder.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(
            project=project,
            group=group,
            name=name,
            job_type="train",
            config=config,
            mode=mode,
            dir=str(folder),
            reinit="create_new",
        )
        self.run.define_metric("train_time")
        self.run.define_metric("*", step_metric="train_time")
        logger.info("W&B run %s (%s) writes to %s", self.run.id, mode, self.run.dir)

    def log(self, step: int, values: dict) -> None:
        if self.run is not None:
            self.run.log(values, step=step)

    def log_curves(self, step: int, history: list[dict]) -> None:
        """Log one chart per `{split}/{metric}` with the finite and twin curves."""
        if self.run is None or not history:
            return
        import wandb

        times = [row["train_time"] for row in history]
        charts = {}
        for key in sorted(history[-1]):
            if not key.endswith("/finite_mean"):
                continue
            base = key[: -len("/finite_mean")]
            twin_key = f"{base}/twin"
            if twin_key not in history[-1]:
                continue
            charts[f"compare/{base}"] = wandb.plot.line_series(
                xs=times,
                ys=[[row[key] for row in history], [row[twin_key] for row in history]],
                keys=["finite ensemble mean", "twin"],
                title=f"{base}: finite vs twin",
                xname="train_time",
            )
        self.run.log(charts, step=step)

    def log_figures(self, step: int, figures: dict) -> None:
        if self.run is None:
            return
        import wandb

        self.run.log(
            {f"plots/{name}": wandb.Image(fig) for name, fig in figures.items()},
            step=step,
        )

    def finish(self) -> None:
        """Finish the run and wait until its run file is complete on disk."""
        if self.run is None:
            return
        from train.wandb_files import wait_for_exit_record

        run_file = Path(self.run.dir).parent / f"run-{self.run.id}.wandb"
        offline = self.run.settings.mode == "offline"
        self.run.finish()
        self.run = None
        if offline and not wait_for_exit_record(run_file):
            logger.warning("W&B run file %s is still incomplete after 60 s", run_file)
