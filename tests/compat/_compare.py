"""Compare what two sides logged, through MLflow's own client.

Runs are paired by their place in the run tree (top-level runs, then each run's children):
by run name where both sides have that name among the siblings, otherwise by order (params,
then start time). For each pair: status, user, params, metrics (keys, and the steps and
values of each history), tags, dataset inputs, the recursive artifact listing, and on
MLflow 3 the run's logged models (params, metrics, tags, status, artifact listing, the
MLmodel's fields, flavors and signature, and the run's model outputs). Every model is then
loaded with ``mlflow.pyfunc.load_model`` on both sides and its predictions compared; the
registered models whose names carry the sides' suffixes are compared last.

What is never compared, because it identifies or times a run rather than describing it:
run, experiment and model ids, artifact URIs, timestamps, durations. Values that embed an id
(``mlflow.parentRunId``, a registered version's source and run id) are compared with the
ids replaced by the paired run's or model's label.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EXCLUDED_TAGS",
    "TIMING_METRICS",
    "Difference",
    "Report",
    "compare",
]

# Tags that are not compared, and why:
EXCLUDED_TAGS = {
    # the run's name: compared by pairing runs on it (a name generated for an unnamed run
    # is random on both sides)
    "mlflow.runName",
    # mlrelay's exactly-once key (and its former name): hidden by design, never the user's
    "mlflow.mlrelay.clientKey",
    "mlrelay.client_key",
    # the parent's run id: compared through the run tree the pairing builds
    "mlflow.parentRunId",
}
# Metrics whose values are wall-clock times (GridSearchCV's cv_results_): keys and steps
# are compared, values are not.
TIMING_METRICS = {"mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"}
# Keys of a model-history entry (``mlflow.log-model.history``, MLflow 2.x) that identify or
# time the model: ids and creation time.
HISTORY_IDS = {"run_id", "model_uuid", "utc_time_created", "model_id"}
# MLmodel fields whose values identify or time the model (compared by presence).
MLMODEL_IDS = {"run_id", "model_uuid", "utc_time_created", "model_id", "artifact_path"}

_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")


@dataclass(frozen=True)
class Difference:
    """One field that differs between MLflow's run and mlrelay's."""

    script: str
    run: str
    field: str
    mlflow: Any
    mlrelay: Any

    def __str__(self) -> str:
        """``script: run R: field F: mlflow=... mlrelay=...``."""
        return (
            f"{self.script}: run {self.run}: {self.field}: "
            f"mlflow={self.mlflow!r} mlrelay={self.mlrelay!r}"
        )


@dataclass
class Report:
    """Every difference found for one script, and what was compared."""

    script: str
    differences: list[Difference] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)

    rel: float = 0.0  # relative tolerance for floats; 0: exactly equal

    def check(self, run: str, name: str, theirs: Any, ours: Any) -> None:
        """Record a difference when the two values are not equal."""
        self.compared.append(f"{run}:{name}")
        if not _same(theirs, ours, self.rel):
            self.differences.append(Difference(self.script, run, name, theirs, ours))


def _same(a: Any, b: Any, rel: float) -> bool:
    """Equal; floats (also inside lists, tuples and dicts) within ``rel`` when it is > 0."""
    if rel and isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel)
    if rel and isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, rel) for x, y in zip(a, b, strict=True))
    if rel and isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rel) for k in a)
    return bool(a == b)


@dataclass
class _Side:
    """One side's experiments, runs and models on the server."""

    suffix: str
    experiment_ids: list[str]
    runs: list[Any]
    models: list[Any]
    labels: dict[str, str] = field(default_factory=dict)  # run or model id -> label


def _side(client: Any, suffix: str, logged_models: bool) -> _Side:
    from mlflow.entities import ViewType

    experiments = client.search_experiments(
        filter_string=f"name LIKE '%{suffix}'", view_type=ViewType.ALL
    )
    ids = [e.experiment_id for e in experiments]
    runs = client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000) if ids else []
    models = list(client.search_logged_models(ids)) if ids and logged_models else []
    return _Side(suffix, ids, list(runs), models)


def _order_key(run: Any) -> tuple[str, int]:
    return json.dumps(run.data.params, sort_keys=True), run.info.start_time or 0


def _pairs(theirs: list[Any], ours: list[Any]) -> list[tuple[str, Any, Any]]:
    """Pair sibling runs: by run name where both sides have it, the rest by order."""
    names = {r.info.run_name for r in theirs} & {r.info.run_name for r in ours}
    by_name = [
        (name, next(r for r in theirs if r.info.run_name == name),
         next(r for r in ours if r.info.run_name == name))
        for name in sorted(names)
        if sum(r.info.run_name == name for r in theirs) == 1
        and sum(r.info.run_name == name for r in ours) == 1
    ]  # fmt: skip
    named = {name for name, _, _ in by_name}
    rest = [sorted((r for r in side if r.info.run_name not in named), key=_order_key)
            for side in (theirs, ours)]  # fmt: skip
    pairs: list[tuple[str, Any, Any]] = list(by_name)
    for i in range(max(len(rest[0]), len(rest[1]))):
        pairs.append((
            f"#{i}", rest[0][i] if i < len(rest[0]) else None,
            rest[1][i] if i < len(rest[1]) else None,
        ))  # fmt: skip
    return pairs


def _children(side: _Side, parent: str | None) -> list[Any]:
    return [r for r in side.runs if r.data.tags.get("mlflow.parentRunId") == parent]


def _tree(theirs: _Side, ours: _Side, prefix: str, parents: tuple[str | None, str | None]
          ) -> Iterable[tuple[str, Any, Any]]:  # fmt: skip
    for label, a, b in _pairs(_children(theirs, parents[0]), _children(ours, parents[1])):
        path = f"{prefix}/{label}" if prefix else label
        if a is not None:
            theirs.labels[a.info.run_id] = path
        if b is not None:
            ours.labels[b.info.run_id] = path
        yield path, a, b
        if a is not None and b is not None:
            yield from _tree(theirs, ours, path, (a.info.run_id, b.info.run_id))


def _run_lister(client: Any, run: Any, v3: bool) -> Callable[[str | None], list[Any]]:
    """``list_artifacts`` of the run: MLflow's client on MLflow 3; on a 2.x server the run's
    artifact repository (MLflow 3's client also looks among logged models, which 2.x has not)."""
    if v3:
        return lambda p: client.list_artifacts(run.info.run_id, p)
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(run.info.artifact_uri)
    return lambda p: repo.list_artifacts(p)


def _listing(lister: Callable[[str | None], list[Any]], path: str | None = None) -> list[str]:
    """Every file and folder below ``path``, recursively (folders end with /)."""
    out: list[str] = []
    seen: set[str] = set()
    for item in lister(path):
        if item.is_dir:
            out.append(item.path + "/")
            if item.path not in seen:  # a folder listed twice is entered once
                seen.add(item.path)
                out.extend(_listing(lister, item.path))
        else:
            out.append(item.path)
    return sorted(out)


def _visible(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k not in EXCLUDED_TAGS}


def _history_entries(value: str) -> Any:
    try:
        entries = json.loads(value)
    except ValueError:
        return value
    return [{k: v for k, v in e.items() if k not in HISTORY_IDS} for e in entries]


def _tags(tags: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tags.items():
        if key in EXCLUDED_TAGS:
            continue
        out[key] = _history_entries(value) if key == "mlflow.log-model.history" else value
    return out


def _metric_history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    points = client.get_metric_history(run_id, key)
    return [(p.step, p.value) for p in sorted(points, key=lambda p: (p.step, p.timestamp))]


def _compare_metrics(report: Report, client: Any, path: str, a: Any, b: Any) -> None:
    report.check(path, "metric keys", sorted(a.data.metrics), sorted(b.data.metrics))
    for key in sorted(set(a.data.metrics) & set(b.data.metrics)):
        ha = _metric_history(client, a.info.run_id, key)
        hb = _metric_history(client, b.info.run_id, key)
        if key in TIMING_METRICS:
            ha, hb = [(s, 0.0) for s, _ in ha], [(s, 0.0) for s, _ in hb]
        report.check(path, f"metric {key!r} (step, value) history", ha, hb)


def _inputs(run: Any) -> list[tuple[Any, ...]]:
    inputs = run.inputs.dataset_inputs if run.inputs else []
    return sorted(
        (d.dataset.name, d.dataset.digest, d.dataset.source_type,
         tuple(sorted((t.key, t.value) for t in d.tags)))
        for d in inputs
    )  # fmt: skip


def _compare_run(report: Report, client: Any, path: str, a: Any, b: Any, v3: bool) -> None:
    report.check(path, "status", a.info.status, b.info.status)
    report.check(path, "lifecycle_stage", a.info.lifecycle_stage, b.info.lifecycle_stage)
    report.check(path, "user_id", a.info.user_id, b.info.user_id)
    report.check(path, "params", a.data.params, b.data.params)
    _compare_metrics(report, client, path, a, b)
    ta, tb = _tags(a.data.tags), _tags(b.data.tags)
    report.check(path, "tag keys", sorted(ta), sorted(tb))
    for key in sorted(set(ta) & set(tb)):
        report.check(path, f"tag {key!r}", ta[key], tb[key])
    report.check(path, "dataset inputs", _inputs(a), _inputs(b))
    report.check(
        path, "artifacts (recursive list_artifacts)",
        _listing(_run_lister(client, a, v3)),
        _listing(_run_lister(client, b, v3)),
    )  # fmt: skip


def _mlmodel(uri: str) -> dict[str, Any]:
    import mlflow

    info = mlflow.models.Model.load(uri)
    data: dict[str, Any] = info.to_dict()
    return data


def _model_fields(uri: str) -> dict[str, Any]:
    """The MLmodel's fields: ids and times by presence, the rest by value."""
    data = _mlmodel(uri)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in MLMODEL_IDS:
            out[key] = "<present>"
        elif key == "flavors":
            out[key] = {name: sorted(conf) for name, conf in value.items()}
        elif key in ("model_size_bytes", "mlflow_version"):
            out[key] = "<present>"
        else:
            out[key] = value
    return out


def _versions(value: str, suffix: str) -> list[tuple[str, str]]:
    """``mlflow.modelVersions`` as (name without the side's suffix, version) pairs: MLflow 3.17
    lists a version registered by log_model twice, once with an int and once with a str."""
    entries = json.loads(value)
    return sorted({(e["name"].removesuffix(suffix), str(e["version"])) for e in entries})


def _untimed(key: str, value: float) -> float | None:
    """A model's metric value, None for the wall-clock timings (TIMING_METRICS) MLflow links
    to a search's ``best_estimator``: those are compared by key and step only."""
    return None if key in TIMING_METRICS else value


def _compare_model(
    report: Report, client: Any, path: str, pair: tuple[Any, Any], sides: tuple[_Side, _Side]
) -> None:
    a, b = pair
    where = f"{path} model {a.name!r}"
    report.check(where, "status", str(a.status), str(b.status))
    report.check(where, "model_type", a.model_type, b.model_type)
    report.check(where, "params", a.params, b.params)
    report.check(
        where, "metrics",
        sorted((m.key, _untimed(m.key, m.value), m.step) for m in a.metrics or []),
        sorted((m.key, _untimed(m.key, m.value), m.step) for m in b.metrics or []),
    )  # fmt: skip
    ta, tb = _visible(a.tags), _visible(b.tags)
    report.check(where, "tag keys", sorted(ta), sorted(tb))
    for key in sorted(set(ta) & set(tb)):
        va, vb = ta[key], tb[key]
        if key == "mlflow.modelVersions":
            va, vb = _versions(va, sides[0].suffix), _versions(vb, sides[1].suffix)
        report.check(where, f"tag {key!r}", va, vb)
    report.check(
        where, "artifacts (recursive list_logged_model_artifacts)",
        _listing(lambda p: client.list_logged_model_artifacts(a.model_id, p)),
        _listing(lambda p: client.list_logged_model_artifacts(b.model_id, p)),
    )  # fmt: skip
    fa, fb = _model_fields(a.model_uri), _model_fields(b.model_uri)
    report.check(where, "MLmodel fields", sorted(fa), sorted(fb))
    for key in sorted(set(fa) & set(fb)):
        report.check(where, f"MLmodel {key}", fa[key], fb[key])


def _outputs(run: Any, side: _Side) -> list[tuple[str, int]]:
    outputs = run.outputs.model_outputs if run.outputs else []
    names = {m.model_id: m.name for m in side.models}
    return sorted((names.get(o.model_id, o.model_id), o.step) for o in outputs)


def _predict(uri: str, data: Any) -> Any:
    """What the model at ``uri``, loaded by MLflow's pyfunc loader, predicts for ``data``."""
    import mlflow
    import numpy as np

    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        try:
            if uri.startswith("mlflow-artifacts:"):
                # a 2.x server's run artifacts (MLflow 3's runs:/ resolution looks among
                # logged models, which 2.x has not): fetch the files, then load them.
                uri = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
            predicted = mlflow.pyfunc.load_model(uri).predict(data)
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc)[:300]}"
    return np.asarray(predicted).tolist()


def _models_of(run: Any, side: _Side, client: Any) -> dict[str, str]:
    """The run's models as name -> URI: its logged models (MLflow 3), else the folders of
    its artifacts that hold an MLmodel (MLflow 2)."""
    if side.models:
        return {
            m.name: f"models:/{m.model_id}"
            for m in side.models
            if m.source_run_id == run.info.run_id
        }
    listing = _listing(_run_lister(client, run, False))
    return {
        p.rsplit("/", 1)[0]: f"{run.info.artifact_uri}/{p.rsplit('/', 1)[0]}"
        for p in listing
        if p.endswith("/MLmodel")
    }


def _compare_models(
    report: Report, client: Any, path: str, pair: tuple[Any, Any], sides: tuple[_Side, _Side],
    data: Any,
) -> None:  # fmt: skip
    a, b = pair
    ma, mb = _models_of(a, sides[0], client), _models_of(b, sides[1], client)
    report.check(path, "models (names)", sorted(ma), sorted(mb))
    if sides[0].models or sides[1].models:
        report.check(path, "run outputs (model, step)", _outputs(a, sides[0]),
                     _outputs(b, sides[1]))  # fmt: skip
        by_name = {m.name: m for m in sides[1].models if m.source_run_id == b.info.run_id}
        for model in sides[0].models:
            if model.source_run_id == a.info.run_id and model.name in by_name:
                _compare_model(report, client, path, (model, by_name[model.name]), sides)
    for name in sorted(set(ma) & set(mb)):
        if data is not None:
            report.check(path, f"predictions of model {name!r}", _predict(ma[name], data),
                         _predict(mb[name], data))  # fmt: skip


def _relabel(value: Any, side: _Side) -> Any:
    text = str(value)
    for ident, label in side.labels.items():
        text = text.replace(ident, f"<{label}>")
    return _MODEL_ID.sub("<model id>", text)


def _compare_registry(report: Report, client: Any, sides: tuple[_Side, _Side], data: Any) -> None:
    found = []
    for side in sides:
        models = client.search_registered_models(filter_string=f"name LIKE '%{side.suffix}'")
        found.append({m.name[: -len(side.suffix)]: m for m in models})
    report.check("registry", "registered models", sorted(found[0]), sorted(found[1]))
    for name in sorted(set(found[0]) & set(found[1])):
        ra, rb = found[0][name], found[1][name]
        where = f"registered model {name!r}"
        report.check(where, "description", ra.description, rb.description)
        report.check(where, "tags", _visible(ra.tags), _visible(rb.tags))
        report.check(where, "aliases", ra.aliases, rb.aliases)
        versions = [
            {v.version: v for v in client.search_model_versions(f"name = '{r.name}'")}
            for r in (ra, rb)
        ]
        report.check(where, "versions", sorted(versions[0]), sorted(versions[1]))
        for number in sorted(set(versions[0]) & set(versions[1])):
            va, vb = versions[0][number], versions[1][number]
            vwhere = f"{where} version {number}"
            report.check(vwhere, "description", va.description, vb.description)
            report.check(vwhere, "status", va.status, vb.status)
            report.check(vwhere, "tags", _visible(va.tags), _visible(vb.tags))
            report.check(vwhere, "aliases", sorted(va.aliases), sorted(vb.aliases))
            report.check(vwhere, "run", _relabel(va.run_id, sides[0]),
                         _relabel(vb.run_id, sides[1]))  # fmt: skip
            report.check(vwhere, "source", _relabel(va.source, sides[0]),
                         _relabel(vb.source, sides[1]))  # fmt: skip
        for alias in sorted(set(ra.aliases) & set(rb.aliases)):
            if data is not None:
                report.check(
                    where, f"predictions of models:/{name}@{alias}",
                    _predict(f"models:/{ra.name}@{alias}", data),
                    _predict(f"models:/{rb.name}@{alias}", data),
                )  # fmt: skip


def compare(
    script: str, tracking_uri: str, suffixes: tuple[str, str], data: Any, *,
    logged_models: bool, rel: float = 0.0,
) -> Report:  # fmt: skip
    """Everything the two sides (experiments named ``*<suffix>``) logged, compared.

    ``data`` is the input the models' predictions are compared on (None: not compared);
    ``logged_models`` says whether the server has MLflow 3's logged models; ``rel`` is the
    relative tolerance for floats (0, exact, when both sides run the same numpy and
    scikit-learn; MLflow 2.7.1's venv has older ones, whose results differ in the last bits).
    """
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    client = mlflow.MlflowClient(tracking_uri)
    # pyfunc.load_model resolves models:/ URIs through the global tracking URI
    with _use_tracking_uri(tracking_uri):
        report = Report(script, rel=rel)
        theirs, ours = (_side(client, s, logged_models) for s in suffixes)
        report.check("experiments", "count", len(theirs.experiment_ids), len(ours.experiment_ids))
        for path, a, b in list(_tree(theirs, ours, "", (None, None))):
            if a is None or b is None:
                report.check(path, "run exists", a is not None, b is not None)
                continue
            _compare_run(report, client, path, a, b, logged_models)
            _compare_models(report, client, path, (a, b), (theirs, ours), data)
        _compare_registry(report, client, (theirs, ours), data)
        return report
