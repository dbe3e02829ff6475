"""tilewise.math: nvmath-python's math library built from tile kernels (issue 13). So far: matmul
(`matmul`, stateful `Matmul`, `MatmulEpilog`) on host arrays; see docs/math.md."""
from .epilogs import MatmulEpilog
from .matmul import Matmul, matmul

__all__ = ["Matmul", "MatmulEpilog", "matmul"]
