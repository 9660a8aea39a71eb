"""Data-parallel training over MPI (``mpi4py``): every rank holds the whole model and trains on its slice of
each global batch; after backward one all-reduce sums the gradients, so every rank takes the same optimizer
step and the weights stay identical — those of one process training on the whole batch.

    mpiexec -n 2 minitx pretrain --corpus builtin --batch-size 16 ...     # 8 examples per rank and step

The model and the optimizer never learn the world size; only four things do (the layout of llm.c's
multi-GPU code): the sampler (``rank_slice``), the loss normalisation (``global_mean``), the gradients
(``all_reduce_gradients``) and I/O (``is_main``: only rank 0 writes logs, checkpoints and the progress bar).

**The global mean (the classic bug).** A masked-LM loss is the mean over the masked tokens of the *whole*
global batch. Rank r holds n_r of the N masked tokens, and the n_r differ from rank to rank. Averaging the
per-rank means, (1/P) Σ_r (1/n_r) Σ_{i∈r} ℓ_i, weights a token of a rank with few masks more than one of a
rank with many: it is not the loss of one process. The right loss is (1/N) Σ_r Σ_{i∈r} ℓ_i. So inside
``global_mean()`` a "mean" reduction divides the rank's *sum* by the all-reduced count N; the rank's loss is
then its share of the global mean, the shares add up to it, and the all-reduced *sum* of the gradients is
its gradient. Each loss term (MLM, NSP) gets its own N, because each cross-entropy call all-reduces its own count.

Outside ``mpiexec`` (no MPI environment variables) this module is inert: world size 1, rank 0, and mpi4py is
never imported. Launched by ``mpiexec``/``srun``, a rank that raises prints its traceback and aborts the whole
job (``MPI_Abort``), so no rank waits forever in a collective.
"""
import contextlib
import os
import sys
import traceback

import numpy as np

# Variables that MPI launchers set in every rank: MPICH/Hydra and Slurm's PMI, PMIx, Open MPI, MVAPICH.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "PMIX_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

_comm = None          # the world communicator once MPI is initialised
_in_global_mean = False


def launched_by_mpi() -> bool:
    """True when this process is one of several started by an MPI launcher."""
    return any(int(os.environ.get(v, "1") or 1) > 1 for v in _LAUNCHER_SIZE_VARIABLES)


def _world():
    """The MPI world communicator (initialising MPI on first use), or None when not launched by MPI."""
    global _comm
    if _comm is None and launched_by_mpi():
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise RuntimeError("launched by mpiexec but mpi4py is not installed: pip install 'minitx[dist]' "
                               "(mpi4py + mpich)") from error
        _comm = MPI.COMM_WORLD
        _abort_all_ranks_on_error()
    return _comm


def _abort_all_ranks_on_error() -> None:
    """An uncaught exception on any rank prints its traceback and aborts every rank (no hang in a collective)."""
    previous = sys.excepthook

    def excepthook(kind, value, tb):
        if issubclass(kind, (KeyboardInterrupt, SystemExit)):
            return previous(kind, value, tb)
        sys.stderr.write(f"[rank {rank()}/{world_size()}] " + "".join(traceback.format_exception(kind, value, tb)))
        sys.stderr.flush()
        _comm.Abort(1)

    sys.excepthook = excepthook


def abort(exit_code: int = 1) -> None:
    """Stop every rank now (after an error this rank has already reported)."""
    comm = _world()
    if comm is not None:
        comm.Abort(exit_code)
    sys.exit(exit_code)


def world_size() -> int:
    comm = _world()
    return 1 if comm is None else comm.Get_size()


def rank() -> int:
    comm = _world()
    return 0 if comm is None else comm.Get_rank()


def is_main() -> bool:
    """Rank 0: the one process that writes logs, checkpoints, curves and the progress bar."""
    return rank() == 0


def barrier() -> None:
    comm = _world()
    if comm is not None:
        comm.Barrier()


def per_rank_batch_size(global_batch_size: int) -> int:
    """Each rank's share of the global batch; the world size must divide it (equal slices, equal work)."""
    size = world_size()
    if global_batch_size % size:
        raise ValueError(f"the global batch size {global_batch_size} is not divisible by the number of processes "
                         f"{size}; use a multiple of {size}")
    return global_batch_size // size


def rank_slice(indices: np.ndarray) -> np.ndarray:
    """This rank's part of one global batch: the same contiguous split of ``indices`` on every rank, so the
    ranks together see exactly the batch one process would (a last, short batch is split as evenly as it goes)."""
    return np.array_split(np.asarray(indices), world_size())[rank()]


def broadcast_parameters(model) -> None:
    """Copy every parameter from rank 0 to the others (a start from identical weights), in one flat buffer."""
    comm = _world()
    if comm is None:
        return
    params = list(model.parameters())
    flat = np.concatenate([p.data.ravel() for p in params]) if params else np.zeros(0, np.float32)
    comm.Bcast(flat, root=0)
    _unflatten_into(flat, [p.data for p in params])


def all_reduce_gradients(params) -> None:
    """Sum every gradient over the ranks with one ``Allreduce`` of a flat buffer (one message instead of one per
    tensor: the latency of a collective dominates for the many small tensors of a transformer). A ring
    all-reduce sends 2(P-1)/P of the buffer per rank, whatever P."""
    comm = _world()
    if comm is None:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = np.concatenate([p.grad.data.ravel() for p in params])
    from mpi4py import MPI

    comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
    _unflatten_into(flat, [p.grad.data for p in params])


def all_reduce_sum(value: float) -> float:
    """The sum of a number over the ranks (the logged loss is the sum of the ranks' shares)."""
    comm = _world()
    return value if comm is None else comm.allreduce(value)


def _unflatten_into(flat: np.ndarray, arrays: list) -> None:
    offset = 0
    for a in arrays:
        a[...] = flat[offset:offset + a.size].reshape(a.shape)
        offset += a.size


@contextlib.contextmanager
def global_mean():
    """Inside this block, losses with a "mean" reduction divide by the count over *all* ranks (see the module
    docstring); the Trainer wraps each forward in it when the world size is above 1."""
    global _in_global_mean
    previous, _in_global_mean = _in_global_mean, world_size() > 1
    try:
        yield
    finally:
        _in_global_mean = previous


def mean_denominator(local_count: int) -> int:
    """What a "mean" loss divides its sum by: the local count, or inside ``global_mean()`` the global one."""
    comm = _world() if _in_global_mean else None
    return local_count if comm is None else comm.allreduce(int(local_count))
