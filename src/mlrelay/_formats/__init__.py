"""ML file formats, written and read without MLflow and without any HTTP.

- ``models``: MLflow model directories (MLmodel, flavors, signatures, input examples);
- ``pyfunc``: mlrelay's pyfunc loader for custom models;
- ``datasets``: dataset entities (digest, schema, profile) from DataFrames, arrays, paths;
- ``repro``: the environment and source of a run (packages, entry script, git diff);
- ``gitinfo``: git commit, branch and remote, read from ``.git`` without running git.

Modules here may import only ``_errors``, ``_protocol`` and each other.
"""
