#!/usr/bin/env python3
# A command-line tool: printing is its job.
# ruff: noqa: T201
"""Build in_scope.txt / excluded.txt from all_collected.txt (pytest --co -q output).

Usage: make_selection.py [all_collected.txt]
The collected list defaults to $MOCKFID_OUT/all_collected.txt; if it does not exist it is made
with ``pytest --co -q`` on the three modules in $MLFLOW_TESTS_DIR (see run.sh). in_scope.txt and
excluded.txt are rewritten next to this script. Their union is the collected list, so
``cat in_scope.txt excluded.txt`` (minus comments and reasons) also serves as input.

Rule: a test is IN scope when (a) it gets its server only through the swappable fixtures
(mlflow_client / client / artifacts_server), not an inline server in the body, and (b) what it
exercises is the mock's declared surface: experiments, runs, metrics (incl. metric history and
the UI's get-history-bulk[-interval]), params, tags, run inputs/outputs, search, artifacts
(incl. mlflow-artifacts proxy, get-artifact, upload-artifact, logged-model artifacts),
model registry, logged models. `[file...]` parametrisations are dropped: upstream skips them
(FileStore no longer supported) on both backends.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = (
    "tests/tracking/test_rest_tracking.py",
    "tests/tracking/test_model_registry.py",
    "tests/tracking/test_mlflow_artifacts.py",
)
OUT: dict[str, str] = {}  # function name -> reason for exclusion


def out(reason: str, *names: str) -> None:
    """Exclude the test functions ``names`` (all their parametrisations) for ``reason``."""
    for n in names:
        OUT[n] = reason


out(
    "GenAI tracing/traces/spans/assessments (out of scope)",
    "test_assessments_end_to_end",
    "test_calculate_trace_filter_correlation",
    "test_delete_traces",
    "test_get_trace",
    "test_get_trace_artifact_handler",
    "test_get_trace_handler",
    "test_legacy_start_and_end_trace_v2",
    "test_link_traces_to_run_and_search_traces",
    "test_query_trace_metrics",
    "test_rest_store_logs_spans_via_otel_endpoint",
    "test_search_traces",
    "test_search_traces_match_text",
    "test_search_traces_parameter_validation",
    "test_set_and_delete_trace_tag",
    "test_start_trace",
)
out(
    "GraphQL (out of scope)",
    "test_get_experiment_graphql",
    "test_get_metric_history_bulk_interval_graphql",
    "test_get_run_and_experiment_graphql",
    "test_graphql_handler",
    "test_graphql_handler_batching_raise_error",
    "test_graphql_nan_metric_handling",
    "test_list_artifacts_graphql",
    "test_search_datasets_graphql",
    "test_search_runs_graphql",
)
out(
    "evaluation datasets (mlflow.genai.datasets; out of scope)",
    "test_add_dataset_to_experiments_rest_tracking",
    "test_add_multiple_experiments_at_once_rest_tracking",
    "test_client_api_add_remove_experiments_rest_tracking",
    "test_create_and_get_evaluation_dataset",
    "test_dataset_experiment_association_error_cases_rest_tracking",
    "test_evaluation_dataset_delete",
    "test_evaluation_dataset_tag_operations",
    "test_evaluation_dataset_upsert_records",
    "test_idempotent_add_experiments_rest_tracking",
    "test_idempotent_remove_experiments_rest_tracking",
    "test_remove_dataset_from_experiments_rest_tracking",
    "test_search_evaluation_datasets",
)
out(
    "UI-internal /ajax-api/2.0/mlflow/experiments/search-datasets (dataset-summary UI endpoint;"
    " not in the issue's list, treated as out of scope)",
    "test_search_dataset_handler_rejects_invalid_requests",
    "test_search_dataset_handler_returns_expected_results",
)
out("scorers / online scoring (out of scope)", "test_scorer_CRUD", "test_online_scoring_config")
out(
    "prompt lab (out of scope)",
    "test_create_promptlab_run_handler_rejects_invalid_requests",
    "test_create_promptlab_run_handler_returns_expected_results",
)
out(
    "AI gateway: secrets, endpoints, providers, model definitions (out of scope)",
    "test_attach_detach_model_to_endpoint",
    "test_create_and_get_endpoint",
    "test_create_and_get_secret",
    "test_create_and_update_compound_secret_via_rest",
    "test_create_endpoint_with_usage_tracking",
    "test_create_secret_with_dict_value",
    "test_delete_endpoint",
    "test_delete_secret",
    "test_endpoint_bindings",
    "test_endpoint_with_orphaned_model_definition",
    "test_gateway_proxy_handler_rejects_invalid_requests",
    "test_get_provider_config",
    "test_get_secrets_config_with_custom_passphrase",
    "test_get_secrets_config_with_default_passphrase",
    "test_list_endpoints",
    "test_list_models",
    "test_list_providers",
    "test_list_secret_infos",
    "test_model_definitions",
    "test_secrets_and_endpoints_integration",
    "test_update_endpoint",
    "test_update_model_definition_provider",
    "test_update_secret",
    "test_update_secret_with_dict_value",
)
out(
    "issues (GenAI issue tracking; out of scope)",
    "test_create_issue_invalid_experiment",
    "test_create_issue_minimal_fields",
    "test_create_issue_with_all_fields",
    "test_create_issue_with_required_fields",
    "test_get_issue",
    "test_get_issue_not_found",
    "test_search_issues_by_experiment",
    "test_search_issues_by_status",
    "test_search_issues_no_filters",
    "test_search_issues_sorted_by_timestamp",
    "test_search_issues_with_pagination",
    "test_update_issue",
)
out("workspace (out of scope)", "test_log_url_includes_workspace_when_set")
out(
    "server-side config a mock can't have: starts its own `mlflow server` with"
    " MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX (inline, not swappable)",
    "test_create_model_version_with_validation_regex",
)
out(
    "not a server test: calls mlflow.server.handlers in-process with a mocked SqlAlchemyStore",
    "test_get_metric_history_bulk_calls_optimized_impl_when_expected",
)
out(
    "needs docker compose (examples/mlflow_artifacts); not runnable here,"
    " not a server-fixture test",
    "test_mlflow_artifacts_example",
)

out(
    "writes to the server's database directly (MlflowClient(sqlite backend_store_uri)."
    "create_model_version(name, 'mlflow-artifacts:', 1) with an int run_id, which only a "
    "SqlAlchemyStore accepts), bypassing HTTP; a mock has no database. The endpoint it then "
    "reads, /model-versions/get-artifact, is probed separately (see report)",
    "test_rest_get_model_version_artifact_api_proxied_artifact_root",
)


def collected_lines() -> list[str]:
    """The ``pytest --co -q`` node ids: from argv[1], $MOCKFID_OUT, or a fresh collection."""
    if len(sys.argv) > 1:
        return Path(sys.argv[1]).read_text().splitlines()
    out_dir = Path(os.environ.get("MOCKFID_OUT") or Path(tempfile.gettempdir()) / "mlrelay-mockfid")
    path = out_dir / "all_collected.txt"
    if not path.exists():
        tests_dir = os.environ.get("MLFLOW_TESTS_DIR")
        if not tests_dir:
            sys.exit(f"no {path}: pass a collected list or set MLFLOW_TESTS_DIR (see run.sh)")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        }
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(HERE / "pytest.ini"),
            "--rootdir",
            tests_dir,
            "-p",
            "swap_plugin",
            "--co",
            "-q",
            *MODULES,
        ]
        res = subprocess.run(
            cmd, cwd=tests_dir, env=env, capture_output=True, text=True, check=False
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(res.stdout)
        print(f"collected into {path}")
    return path.read_text().splitlines()


def main() -> None:
    """Split the collected ids and rewrite in_scope.txt / excluded.txt."""
    inn: list[str] = []
    exc: list[tuple[str, str]] = []
    for raw in collected_lines():
        line = raw.split("\t", 1)[0].strip()
        if "::" not in line or line.startswith("#"):
            continue
        name = line.split("::")[-1]
        base = name.split("[")[0]
        m = re.search(r"\[(.*)\]$", name)
        param = m.group(1) if m else ""
        if m and (param == "file" or param.startswith("file-") or param.endswith("-file")):
            exc.append((line, "FileStore parametrisation: skipped upstream on both backends"))
            continue
        if base in OUT:
            exc.append((line, OUT[base]))
        else:
            inn.append(line)
    doc = (__doc__ or "").strip().splitlines()
    rule = next(i for i, h in enumerate(doc) if h.startswith("Rule:"))
    hdr = [doc[0], *doc[rule - 1 :]]  # title + rule (not the usage paragraph)
    (HERE / "in_scope.txt").write_text(
        "\n".join(("# " + h).rstrip() if h else "# " for h in hdr) + "\n" + "\n".join(inn) + "\n"
    )
    (HERE / "excluded.txt").write_text("".join(f"{n}\t# {r}\n" for n, r in exc))
    print(len(inn), "in scope;", len(exc), "excluded")


if __name__ == "__main__":
    main()
