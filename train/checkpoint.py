"""Checkpoints of an ensemble: parameters and optimiser state, written atomically.

A checkpoint is `step-XXXXXXXX.eqx` (`eqx.tree_serialise_leaves` of the
parameters and optimiser state) plus `latest.json`, which names it with the
step and the run's PRNG seed. Both are written to a temporary file and
renamed, so a run killed mid-write leaves the previous checkpoint intact.
"""

import json
import logging
import os
from pathlib import Path

import equinox as eqx
from jaxtyping import PyTree

from train.errors import UsageError

logger = logging.getLogger(__name__)

KEEP = 2


def save_checkpoint(folder: Path, step: int, state: PyTree, meta: dict) -> Path:
    """Write `state` for `step` and point `latest.json` at it; keep the last two."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:08d}.eqx"
    temporary = path.with_suffix(".eqx.tmp")
    eqx.tree_serialise_leaves(temporary, state)
    os.replace(temporary, path)

    record = dict(meta, step=step, file=path.name)
    _write_json(folder / "latest.json", record)

    for old in sorted(folder.glob("step-*.eqx"))[:-KEEP]:
        old.unlink()
    logger.info("Saved checkpoint at step %d to %s", step, path)
    return path


def load_checkpoint(folder: Path, template: PyTree) -> tuple[int, PyTree, dict] | None:
    """Return (step, state, meta) of the latest checkpoint, or None if there is none.

    `template` is a state of the same structure, e.g. a freshly initialised one.
    Raises a UsageError that suggests `--restart` when the checkpoint is unreadable.
    """
    latest = folder / "latest.json"
    if not latest.exists():
        return None
    try:
        meta = json.loads(latest.read_text())
        path = folder / meta["file"]
        step = int(meta["step"])
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(
            f"Checkpoint record {latest} is unreadable ({error}); pass `--restart` "
            "to discard the checkpoints and start over."
        ) from error
    # equinox wraps a failure to read any leaf, e.g. of a truncated file, in
    # TreePathError, a RuntimeError. OSError covers a missing or unreadable file.
    try:
        state = eqx.tree_deserialise_leaves(path, template)
    except (RuntimeError, OSError) as error:
        raise UsageError(
            f"Checkpoint file {path} is unreadable ({type(error).__name__}); pass "
            "`--restart` to discard the checkpoints and start over."
        ) from error
    return step, state, meta


def _write_json(path: Path, values: dict) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(values, indent=2, sort_keys=True))
    os.replace(temporary, path)
