#!/usr/bin/env bash
# Run MLflow's own in-scope server tests against BACKEND = real | mock (see README.md).
#   run.sh real                          # control: the installed mlflow server fixtures
#   run.sh mock                          # a fresh mlrelay-mock-server (working tree) per test
#   run.sh mock -k search_registered     # subset; results -> $MOCKFID_OUT/results/mock-last.xml
# Full runs write results/BACKEND.xml (+ .log); runs with extra args write results/BACKEND-last.xml.
#
# Env:
#   MLFLOW_TESTS_DIR   (required) an export of MLflow's tests, made once from a clone or bare
#     mirror of an MLflow fork (measured: harupy/mlflow at a89bed67) with
#       mkdir -p DIR && git --git-dir=<clone>/.git archive HEAD tests pyproject.toml | tar -x -C DIR
#     (add conftest.py to the list if your checkout has a top-level one; that fork has none).
#     The measured export held only the files the three modules need:
#       git --git-dir=<clone>/.git archive HEAD pyproject.toml tests/__init__.py \
#         tests/conftest.py tests/helper_functions.py tests/helpers/__init__.py \
#         tests/helpers/db_mocks.py tests/autologging/__init__.py tests/autologging/fixtures.py \
#         tests/integration/__init__.py tests/integration/utils.py \
#         tests/simple_repository_server.py tests/tracing/__init__.py tests/tracing/helper.py \
#         tests/tracking/__init__.py tests/tracking/conftest.py \
#         tests/tracking/integration_test_utils.py tests/tracking/test_mlflow_artifacts.py \
#         tests/tracking/test_model_registry.py tests/tracking/test_rest_tracking.py | tar -x -C DIR
#     (a partial mirror may print "error: invalid object ... docs/..." for absent large files
#     outside tests/; the archive is still complete and git exits 0).
#     psutil must be importable by the test process (the artifacts fixture's teardown needs it
#     to stop `mlflow server`); if the venv lacks it, keep it out of the venv:
#       pip install --target SITE psutil      and pass PYTHONPATH=SITE (kept, after this folder).
#   MOCKFID_OUT        results/ and logs/ go here (default: $TMPDIR/mlrelay-mockfid; never the repo)
#   MOCKFID_PYTHON     interpreter for pytest and the mock (default: <repo>/.venv/bin/python)
#   MOCKFID_PYTHONPATH mock code path (default: <repo>/src:<repo>/mock_server/src)
#   MOCKFID_TIMEOUT    per-test seconds (default 90)
set -u
H=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$H/../../.." && pwd)
BACKEND=${1:?usage: run.sh real|mock [pytest args]}
shift
case "$BACKEND" in real|mock) ;; *) echo "BACKEND must be real or mock" >&2; exit 2;; esac
: "${MLFLOW_TESTS_DIR:?set MLFLOW_TESTS_DIR to an export of the MLflow tests, see the header of run.sh}"
[ -f "$MLFLOW_TESTS_DIR/tests/tracking/test_rest_tracking.py" ] || {
  echo "MLFLOW_TESTS_DIR=$MLFLOW_TESTS_DIR has no tests/tracking/test_rest_tracking.py" >&2; exit 2; }
PY=${MOCKFID_PYTHON:-$REPO/.venv/bin/python}
OUTDIR=${MOCKFID_OUT:-${TMPDIR:-/tmp}/mlrelay-mockfid}
mkdir -p "$OUTDIR/results/history" "$OUTDIR/logs"
if [ $# -gt 0 ]; then OUT="$OUTDIR/results/$BACKEND-last"; else OUT="$OUTDIR/results/$BACKEND"; fi
mapfile -t IDS < <(grep -v '^#' "$H/in_scope.txt" | grep -v '^$')
cd "$MLFLOW_TESTS_DIR" || exit 2
export MOCKFID_BACKEND=$BACKEND MOCKFID_OUT=$OUTDIR MOCKFID_PYTHON=$PY
export MOCKFID_PYTHONPATH=${MOCKFID_PYTHONPATH:-$REPO/src:$REPO/mock_server/src}
export PYTHONPATH="$H${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$(dirname "$PY"):$PATH"  # the artifacts fixture runs `mlflow server`
export CI=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true MLFLOW_ENABLE_ASYNC_LOGGING=false
export MOCKFID_LOG_DIR="$OUTDIR/logs/$BACKEND"
nice -n 10 "$PY" -m pytest -c "$H/pytest.ini" --rootdir "$MLFLOW_TESTS_DIR" \
  -p swap_plugin -q -rfE --timeout "${MOCKFID_TIMEOUT:-90}" --tb=short \
  --junitxml "$OUT.xml" -o junit_logging=no "${IDS[@]}" "$@" 2>&1 | tee "$OUT.log"
rc=${PIPESTATUS[0]}
cp "$OUT.xml" "$OUTDIR/results/history/$(basename "$OUT")-$(date +%Y%m%d-%H%M%S).xml" 2>/dev/null
echo "results: $OUT.xml (compare: $H/compare.py)"
exit "$rc"
