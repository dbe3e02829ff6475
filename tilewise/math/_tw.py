"""What `tw.` means inside tilewise.math's tile code: the language's functions, dtypes and annotations.
The package's face (`import tilewise`) stands above this floor, so the namespace is built from the
layers below, as tilewise/numpy/kernels.py does."""
import types

from .. import language
from ..frontend.registry import PUBLIC
from ..ir import dtypes as D

tw = types.SimpleNamespace(**PUBLIC, **{dt.name: dt for dt in D.ALL}, Constant=language.Constant,
                           PaddingMode=language.PaddingMode)
