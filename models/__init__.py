"""Statistical models of the engine (PyMC fits and their exact / quadrature twins)."""

import warnings

# PyTensor warns on import when pip installed it without a BLAS to link its C code against. By
# default the engine's fits never run that code: NUTS samples through nutpie's numba-compiled
# model (models.sampling; `sampler.backend: pymc` would run it, slower but with the same results),
# so the warning is noise at the top of every `adaptive interim` and notebook.
warnings.filterwarnings(
    "ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning
)
