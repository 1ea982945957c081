"""The pyfunc loader module named in MLmodel files that mlrelay writes.

Model directories record ``loader_module: mlrelay._pyfunc``; this name is therefore a
stable interface to files on disk and stays here, re-exporting the loader that lives in
:mod:`mlrelay._formats.pyfunc`.
"""

from ._formats.pyfunc import _load_pyfunc

__all__ = ["_load_pyfunc"]
