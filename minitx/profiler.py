"""``minitx.profiler``: where a training step spends its time and memory, op by op.

    with minitx.profiler.profile() as prof:
        loss = model(**batch).loss
        loss.backward()
    print(prof.table())

Every differentiable op runs through ``Function.apply`` (forward) and the backward walk
(``run_backward``), both in minitx/autograd.py, so those two places are the only hooks: each checks the
module-level ``autograd.active_profiler`` and costs one ``is not None`` test when no profile is open.

For each (op, phase, backend) the profile keeps:

* calls and total wall time (``time.perf_counter``; an op that calls other ops inside its forward counts
  their time too, like ``torch.profiler``'s "CPU total");
* bytes of the arrays it returned: the forward's output, or the backward's input gradients;
* forward only: bytes of the arrays it saved for backward (``ctx.saved``). These may be views of its inputs
  or output rather than new memory, so read them as "what this op keeps alive until backward", an upper
  bound on what it adds to the peak;
* which backend ran it: ``numpy`` (the reference) or ``cpp/<isa>`` (``minitx.kernels.info()["isa"]``).
"""
import contextlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from minitx import autograd, backends


@dataclass
class OpStats:
    calls: int = 0
    seconds: float = 0.0
    output_bytes: int = 0
    saved_bytes: int = 0


def array_bytes(values) -> int:
    """Bytes of the distinct NumPy arrays among ``values`` (anything else — shapes, flags, None — is 0)."""
    arrays = {id(v): v for v in values if isinstance(v, np.ndarray)}
    return sum(a.nbytes for a in arrays.values())


def kernel_isa() -> str:
    """The instruction set the C++ kernels dispatch to ("avx2", ...), or "-" without the extension."""
    try:
        from minitx import kernels
        return kernels.info()["isa"]
    except (ImportError, RuntimeError):
        return "-"


class Profile:
    """The statistics of one ``with profile():`` block, keyed by (op name, "forward" | "backward", backend)."""

    def __init__(self):
        self.stats = defaultdict(OpStats)
        self.isa = kernel_isa()

    def backend_label(self) -> str:
        """"numpy", or "cpp/<isa>" for the C++ kernels (the instruction set they were dispatched to)."""
        name = backends.get_backend()
        return f"cpp/{self.isa}" if name == "cpp" else name

    def record(self, op: str, phase: str, seconds: float, outputs, saved=()) -> None:
        """Called by autograd after each forward (outputs = its result) or backward (the input gradients)."""
        row = self.stats[(op, phase, self.backend_label())]
        row.calls += 1
        row.seconds += seconds
        row.output_bytes += array_bytes(outputs)
        row.saved_bytes += array_bytes(saved)

    def rows(self) -> list:
        """One dict per (op, phase, backend), slowest first."""
        rows = [dict(op=op, phase=phase, backend=backend, calls=s.calls, seconds=s.seconds,
                     output_bytes=s.output_bytes, saved_bytes=s.saved_bytes)
                for (op, phase, backend), s in self.stats.items()]
        return sorted(rows, key=lambda r: -r["seconds"])

    def total_seconds(self, phase: str = None) -> float:
        return sum(r["seconds"] for r in self.rows() if phase is None or r["phase"] == phase)

    def table(self, limit: int = 30) -> str:
        """A text table of the ``limit`` slowest rows, with each row's share of the profiled op time."""
        total = self.total_seconds() or 1.0
        header = (f"{'op':<24} {'phase':<8} {'backend':<10} {'calls':>6} {'total ms':>10} {'%':>6} "
                  f"{'mean us':>9} {'out MB':>9} {'saved MB':>9}")
        lines = [header, "-" * len(header)]
        for r in self.rows()[:limit]:
            lines.append(f"{r['op']:<24} {r['phase']:<8} {r['backend']:<10} {r['calls']:>6} "
                         f"{1e3 * r['seconds']:>10.2f} {100 * r['seconds'] / total:>6.1f} "
                         f"{1e6 * r['seconds'] / r['calls']:>9.1f} {r['output_bytes'] / 2**20:>9.2f} "
                         f"{r['saved_bytes'] / 2**20:>9.2f}")
        lines.append(f"op time: forward {1e3 * self.total_seconds('forward'):.1f} ms, "
                     f"backward {1e3 * self.total_seconds('backward'):.1f} ms")
        return "\n".join(lines)


@contextlib.contextmanager
def profile():
    """Record every op run inside the block; yields the ``Profile``. Profiles do not nest."""
    if autograd.active_profiler is not None:
        raise RuntimeError("minitx.profiler.profile(): a profile is already open")
    prof = Profile()
    autograd.active_profiler = prof
    try:
        yield prof
    finally:
        autograd.active_profiler = None

