"""Optional integrations with other tools, one module each, imported only by name.

``import mlrelay`` imports none of them (nor the tool each is for):

- :mod:`mlrelay.integrations.lightning`: ``MLFlowLogger``, a drop-in for PyTorch
  Lightning's, that journals instead of waiting on the server.
- :mod:`mlrelay.integrations.ray_tune`: sweeps on Ray Tune, each trial its own run nested
  under the sweep's run, logged from the Ray worker that runs the trial.
"""
