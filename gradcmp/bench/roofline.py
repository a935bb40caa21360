"""The roofline of the device ``gradcmp bench`` times on: how fast it reads memory, and (on
cuda) how fast it multiplies float32 matrices, with TF32 allowed and not.

cpu: numpy summing a 256 MB array, best of 5. cuda: torch on the first GPU — the sum of a
1 GiB float32 tensor, best of 5, and an 8192×8192 float32 matmul, best of 3, each timed
between ``torch.cuda.synchronize()`` calls. The cuda figures are measured in a forked process
of their own, so the main process never initialises CUDA (it forks one process per backend
afterwards, and CUDA does not survive a fork).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass

import numpy as np

from ..backends.devices import matmul_precision
from ..environment import cpu_name
from ..errors import BackendError, one_line

BANDWIDTH_BYTES = 256 * 2**20  # cpu: numpy's read
CUDA_BANDWIDTH_BYTES = 2**30  # cuda: torch's read
MATMUL_SIZE = 8192
BANDWIDTH_REPEAT = 5
MATMUL_REPEAT = 3


@dataclass(frozen=True)
class Roofline:
    device: str  # cpu or cuda
    device_name: str
    bandwidth_bytes_per_second: float
    matmul_tflops_float32: float | None = None  # cuda only
    matmul_tflops_tf32: float | None = None  # cuda only

    def to_dict(self) -> dict:
        document = {
            "device": self.device,
            "device_name": self.device_name,
            "bandwidth_bytes_per_second": self.bandwidth_bytes_per_second,
        }
        if self.device == "cuda":
            document["matmul_tflops_float32"] = self.matmul_tflops_float32
            document["matmul_tflops_tf32"] = self.matmul_tflops_tf32
        return document

    def describe(self) -> str:
        """One line for the table's heading."""
        if self.device != "cuda":
            return (
                f"cpu ({self.device_name}): read bandwidth "
                f"{self.bandwidth_bytes_per_second / 1e9:.1f} GB/s (numpy sum of 256 MB, best "
                f"of {BANDWIDTH_REPEAT})"
            )
        return (
            f"cuda ({self.device_name}): read bandwidth "
            f"{self.bandwidth_bytes_per_second / 1e9:.1f} GB/s (torch sum of 1 GiB float32, "
            f"best of {BANDWIDTH_REPEAT}); float32 matmul {MATMUL_SIZE}×{MATMUL_SIZE} "
            f"{_tflops(self.matmul_tflops_float32)} without TF32, "
            f"{_tflops(self.matmul_tflops_tf32)} with TF32 (best of {MATMUL_REPEAT})"
        )


def _tflops(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} TFLOP/s"


def matmul_tflops(n: int, seconds: float) -> float:
    """TFLOP/s of an n×n by n×n matmul that took ``seconds``: 2·n³ floating-point operations
    (n³ multiplications, n³ additions)."""
    return 2 * n**3 / seconds / 1e12


def bytes_per_second(nbytes: int, seconds: float) -> float:
    return nbytes / seconds


def best_of(repeat: int, call, synchronize=lambda: None) -> float:
    """The shortest of ``repeat`` timed calls, each between two ``synchronize()`` calls."""
    best = float("inf")
    for _ in range(repeat):
        synchronize()
        start = time.perf_counter()
        call()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def read_bandwidth(repeat: int = BANDWIDTH_REPEAT) -> float:
    """Bytes per second numpy reads: the best of ``repeat`` sums of a 256 MB array."""
    array = np.ones(BANDWIDTH_BYTES // 8)
    return bytes_per_second(array.nbytes, best_of(repeat, array.sum))


def measure(device: str) -> Roofline:
    """The roofline of ``device`` (cuda: measured in a forked process)."""
    if device == "cuda":
        return cuda_roofline()
    return Roofline("cpu", cpu_name(), read_bandwidth())


def measure_cuda() -> dict:
    """The cuda figures, in this process (the forked child: it initialises CUDA)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(
            f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
        )
    device = torch.device("cuda")
    synchronize = torch.cuda.synchronize
    name = torch.cuda.get_device_name(device)
    array = torch.ones(CUDA_BANDWIDTH_BYTES // 4, dtype=torch.float32, device=device)
    array.sum()  # the first call: kernels load
    seconds = best_of(BANDWIDTH_REPEAT, array.sum, synchronize)
    bandwidth = bytes_per_second(array.numel() * array.element_size(), seconds)
    del array
    torch.cuda.empty_cache()
    generator = torch.Generator(device=device).manual_seed(0)
    n = MATMUL_SIZE
    a = torch.randn(n, n, dtype=torch.float32, device=device, generator=generator)
    b = torch.randn(n, n, dtype=torch.float32, device=device, generator=generator)
    tflops = {}
    for allowed in (False, True):  # the switch gradcmp run's --matmul-precision uses
        with matmul_precision("torch", "tf32" if allowed else "highest"):
            torch.mm(a, b)  # the first call: cuBLAS picks its kernel
            synchronize()
            tflops[allowed] = matmul_tflops(
                n, best_of(MATMUL_REPEAT, lambda: torch.mm(a, b), synchronize)
            )
    return {
        "device_name": name,
        "bandwidth": bandwidth,
        "float32": tflops[False],
        "tf32": tflops[True],
    }


def _child(connection, parent: int) -> None:
    from ..judging.children import become_child

    become_child(parent)
    try:
        connection.send(("ok", measure_cuda()))
    except BaseException as exc:  # the parent says why, in one line
        connection.send(("failed", one_line(exc)))
    connection.close()


def cuda_roofline() -> Roofline:
    """The cuda roofline, measured in a forked process; a BackendError (exit 3) if it fails."""
    from ..judging.children import fork

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, os.getpid()), daemon=True)
    fork(process)
    sender.close()
    try:
        try:
            status, payload = receiver.recv()
        except EOFError:
            status, payload = "died", None
    except BaseException:  # Ctrl-C: the child, which ignores it, ends with us
        process.kill()
        raise
    finally:
        process.join()
        receiver.close()
    if status == "died":
        payload = f"the roofline process died (exit code {process.exitcode})"
    if status != "ok":
        raise BackendError(f"cannot measure the cuda roofline: {payload}", hint="use --device cpu")
    return Roofline(
        "cuda", payload["device_name"], payload["bandwidth"], payload["float32"], payload["tf32"]
    )
