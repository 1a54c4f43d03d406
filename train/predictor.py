"""The twin's predictor: the mean of an infinite ensemble trained by gradient flow.

Kernels are computed once, in float64, by `nt.batch` over row blocks with a
progress bar, and kept in a `KernelStore` that can be saved to and read from
`.npz`, so a resumed run does not recompute them. The predictor itself is
`nt.predict.gradient_descent_mse_ensemble` evaluated at the training times
t = learning rate x steps.
"""

import collections
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from twins import nt

logger = logging.getLogger(__name__)

KernelFn = Callable[..., object]


def compute_kernel(
    kernel_fn: KernelFn,
    x1: np.ndarray,
    x2: np.ndarray | None,
    get: str,
    batch_size: int,
    description: str = "kernel",
    progress: bool = True,
) -> np.ndarray:
    """Compute `kernel_fn(x1, x2, get)` in float64, one block of rows at a time.

    `nt.batch` needs sizes divisible by its batch size, so both inputs are
    padded by repeating their last row and the padding is cut off afterwards.
    """
    x1 = np.asarray(x1, np.float64)
    x2 = x1 if x2 is None else np.asarray(x2, np.float64)
    batch_size = max(1, min(batch_size, len(x1), len(x2)))
    batched = nt.batch(kernel_fn, batch_size=batch_size, store_on_device=False)

    padded2 = _pad_rows(x2, batch_size)
    padded1 = _pad_rows(x1, batch_size)
    blocks = []
    starts = range(0, len(padded1), batch_size)
    for start in tqdm(starts, desc=description, unit="block", disable=not progress):
        block = batched(padded1[start : start + batch_size], padded2, get)
        blocks.append(np.asarray(block, np.float64))
    return np.concatenate(blocks)[: len(x1), : len(x2)]


def _pad_rows(x: np.ndarray, multiple: int) -> np.ndarray:
    extra = -len(x) % multiple
    if extra == 0:
        return x
    return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)])


class KernelStore:
    """Named inputs and the kernels between them, computed on first use.

    Calling the store like a kernel function, `store(x1, x2, get)`, looks the
    inputs up by identity among `inputs`, which lets
    `gradient_descent_mse_ensemble` use precomputed blocks. Inputs that are
    not registered raise a KeyError.
    """

    def __init__(
        self,
        kernel_fn: KernelFn,
        inputs: dict[str, np.ndarray],
        batch_size: int = 32,
        path: str | os.PathLike | None = None,
        progress: bool = True,
    ):
        self.kernel_fn = kernel_fn
        self.inputs = {name: np.asarray(x, np.float64) for name, x in inputs.items()}
        self.batch_size = batch_size
        self.path = None if path is None else Path(path)
        self.progress = progress
        self.kernels: dict[str, np.ndarray] = {}
        if self.path is not None and self.path.exists():
            with np.load(self.path) as archive:
                self.kernels = {key: archive[key] for key in archive.files}
            logger.info(
                "Read %d cached kernel blocks from %s", len(self.kernels), self.path
            )

    def name_of(self, x) -> str:
        for name, registered in self.inputs.items():
            if x is registered:
                return name
        raise KeyError("The kernel store got inputs that are not registered in it.")

    def block(self, name1: str, name2: str, get: str) -> np.ndarray:
        """Return the `get` kernel between the inputs `name1` and `name2`."""
        key = f"{get}:{name1}:{name2}"
        if key not in self.kernels:
            logger.info("Computing the %s kernel %s x %s", get, name1, name2)
            x2 = None if name1 == name2 else self.inputs[name2]
            self.kernels[key] = compute_kernel(
                self.kernel_fn,
                self.inputs[name1],
                x2,
                get,
                self.batch_size,
                description=f"{get} {name1} x {name2}",
                progress=self.progress,
            )
            self.save()
        return self.kernels[key]

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(temporary, **self.kernels)
        os.replace(temporary, self.path)

    def __call__(self, x1, x2=None, get="ntk", **kwargs):
        name1 = self.name_of(x1)
        name2 = name1 if x2 is None else self.name_of(x2)
        if isinstance(get, str):
            return self.block(name1, name2, get)
        # A tuple `get` expects an object with one attribute per kernel.
        kernels = collections.namedtuple("Kernels", get)
        return kernels(*(self.block(name1, name2, g) for g in get))


def twin_predictions(
    store: KernelStore,
    y_train: np.ndarray,
    times: np.ndarray,
    splits: list[str],
    get: str = "ntk",
    diag_reg: float = 0.0,
) -> dict[str, np.ndarray]:
    """Return the twin's mean outputs (T, N, K) on every split at every time.

    The store's input named `"train"` is the training set; the mean of an
    infinite ensemble starts at zero and follows gradient flow on `mse_loss`.
    """
    x_train = store.inputs["train"]
    predict = nt.predict.gradient_descent_mse_ensemble(
        store, x_train, np.asarray(y_train, np.float64), diag_reg=diag_reg
    )
    times = np.asarray(times, np.float64)

    outputs = {}
    for split in splits:
        x = None if split == "train" else store.inputs[split]
        outputs[split] = np.asarray(predict(t=times, x_test=x, get=get), np.float64)
    return outputs


def max_learning_rate(store: KernelStore, y_train: np.ndarray) -> float:
    """Return the largest stable gradient-descent learning rate for the twin's NTK.

    Gradient descent on `mse_loss` multiplies the error along an NTK
    eigenvector by 1 - lr * eigenvalue / y.size per step, which stays below
    1 in magnitude for lr < 2 * y.size / max eigenvalue. (neural-tangents'
    own `max_learning_rate` fails with current SciPy, whose `eigvalsh` lost
    the `eigvals` argument.)
    """
    kernel = store.block("train", "train", "ntk")
    largest = float(np.linalg.eigvalsh(kernel)[-1])
    return 2.0 * np.size(y_train) / largest
