"""The BLAS threads a job's numpy, scipy and scikit-learn use (``ATALAIA_BLAS_THREADS``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` BLAS threads (None: leave the libraries' own).

    Limits the BLAS libraries loaded when the block starts; the jobs load numpy, scipy and
    scikit-learn before, through the detectors' package. Torch is left to its own setting.
    """
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield
