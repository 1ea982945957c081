"""ML file formats, written and read without MLflow and without any HTTP.

- ``models``: MLflow model directories (MLmodel, environment, input examples);
- ``flavors``: each flavor's files, written and read back (sklearn, xgboost, lightgbm, onnx,
  python_model, loader_module);
- ``schema``: model signatures: schemas, their inference from data, their enforcement;
- ``pyfunc``: custom pyfunc models (``PythonModel``) and mlrelay's pyfunc loader;
- ``datasets``: dataset entities (digest, schema, profile) from DataFrames, arrays, paths;
- ``repro``: the environment and source of a run (packages, entry script, git diff);
- ``gitinfo``: git commit, branch and remote, read from ``.git`` without running git.

Modules here may import only ``_errors``, ``_protocol`` and each other.
"""
