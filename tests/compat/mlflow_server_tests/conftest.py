"""Keep the repository's own pytest run out of this folder.

These files drive MLflow's server tests from an external checkout (see README.md / run.sh);
they are not tests of this repository, so nothing here is collected.
"""

collect_ignore_glob = ["*"]
