# Two commands on a fresh machine with Python 3 and make:
#   make demo   - builds .venv, starts a local tracking server on loopback, runs examples/quickstart.py
#   make test   - builds .venv with the test tools and a real MLflow server, runs lint, types and the suite,
#                 and the unit tier against the lowest dependency versions pyproject allows (test-lowest)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test fuzz lint typecheck pytest test-lowest bench bench-scale bench-outage bench-sync bench-ray clean

$(VENV)/.base: pyproject.toml mock_server/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e . -e ./mock_server
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) install -e '.[test]' -e './mock_server[test]'
	touch $@

# A second real server for the suite: MLflow 2.7.1 (DagsHub serves 2.7), in its own venv,
# built once and kept between runs. The suite finds it at $(VENV27)/bin/mlflow.
VENV27 ?= .venv-mlflow27
$(VENV27)/.done: tests/mlflow27-requirements.txt
	$(PYTHON) -m venv $(VENV27)
	$(VENV27)/bin/python -m pip --disable-pip-version-check -q install -r tests/mlflow27-requirements.txt
	touch $@

# The unit tier against the floors: mlrelay's and the mock server's dependencies at the lowest
# versions their pyproject.toml allow (uv's lowest-direct resolution), the test tools at the
# floors of the [test] extras; the s3 extra (boto3) at its floor too. numpy and pandas, which the unit tests build data with and which
# are no dependency of mlrelay, come at their current versions; tests that compare with MLflow's
# own package (not installed here) are skipped. Rebuilt from scratch when a pyproject changes.
VENVLOW    ?= .venv-lowest
UV_VERSION ?= 0.13.9
UVLOW      := $(VENVLOW)/bin/uv pip install -q --python $(VENVLOW)/bin/python
$(VENVLOW)/.done: pyproject.toml mock_server/pyproject.toml
	rm -rf $(VENVLOW)
	$(PYTHON) -m venv $(VENVLOW)
	$(VENVLOW)/bin/python -m pip --disable-pip-version-check -q install uv==$(UV_VERSION)
	$(UVLOW) --resolution lowest-direct -e '.[s3]' -e ./mock_server \
		'pytest>=8' 'pytest-timeout>=2.3' 'hypothesis>=6.100' 'respx>=0.21'
	$(UVLOW) numpy pandas
	touch $@

test-lowest: $(VENVLOW)/.done
	$(VENVLOW)/bin/python -m pytest tests/unit tests/transport -q

demo: $(VENV)/.base
	$(PY) examples/demo.py

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.test
	$(VENV)/bin/mypy src mock_server/src

pytest: $(VENV)/.test $(VENV27)/.done
	$(PY) -m pytest

test: lint typecheck test-lowest pytest

# The property tests with new random examples on each of FUZZ_RUNS runs (`make test` draws
# the same examples every time). A failure prints the example and a @reproduce_failure line.
FUZZ_RUNS  ?= 10
FUZZ_TESTS := tests/unit/test_batching.py tests/unit/test_config.py tests/unit/test_journal.py \
	tests/unit/test_journal_damage.py tests/unit/test_ns_models.py tests/unit/test_packing.py \
	tests/unit/test_recent.py tests/unit/test_retry.py tests/unit/test_write_path.py \
	tests/mock_server/test_fuzz.py
fuzz: $(VENV)/.test
	for run in $$(seq $(FUZZ_RUNS)); do \
		MLRELAY_HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q $(FUZZ_TESTS) || exit 1; \
	done

# Benchmarks print tables; each starts its own servers on 127.0.0.1.
bench: $(VENV)/.test
	$(PY) benchmarks/import_time.py
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/one_worker.py
	$(PY) benchmarks/mock_server_throughput.py
	$(PY) benchmarks/writers.py --shared

# About half an hour: PostgreSQL + mlflow server --workers 4 + S3 (moto), every table of
# benchmarks/scale.py in one run (landing 1,000,000 points, 1/16/64 writers, 1 GiB).
bench-scale: $(VENV)/.test
	$(PY) benchmarks/scale.py --shared

# Takes several minutes: 5,000,000 points logged during an outage, then delivered.
bench-outage: $(VENV)/.test
	$(PY) benchmarks/outage.py

# Several minutes: 1,000,000 points synced to a real MLflow server, and a 1 GiB artifact.
bench-sync: $(VENV)/.test
	$(PY) benchmarks/sync.py
	$(PY) benchmarks/artifacts.py

# Several minutes: a 50-trial Ray Tune sweep on a local two-CPU Ray cluster, each trial its
# own run nested under the sweep's, against a real MLflow server; Tune alone alongside.
bench-ray: $(VENV)/.test
	$(PY) benchmarks/ray_sweep.py

clean:
	rm -rf $(VENV) $(VENV27) $(VENVLOW)
