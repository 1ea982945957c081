"""The tracking and registry state, and every operation on it, without any HTTP.

Design note: every method that changes state is a *mutation*. A mutation takes keyword
arguments only, and everything that is not deterministic (new ids, the current time, generated
run names) is passed in by the caller. That makes the list of mutations a complete, replayable
history: with a data directory, each successful mutation is appended as one JSON line to
``ops.jsonl`` (flushed at once, so a killed server loses nothing it answered), and a new store
rebuilds its state by replaying the file. A mutation validates everything before it changes
anything, so a failed one leaves no trace and is not written.

The store is not thread-safe: the server touches it from its event loop only.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Concatenate, ParamSpec, TypeVar

from mlrelay_mock._errors import MlflowError, bad_request, invalid, not_found
from mlrelay_mock._logged_search import (
    DatasetFilter,
    LoggedOrder,
    check_filter,
    matching,
    ordered,
)
from mlrelay_mock._model import (
    DOUBLE_MAX,
    DatasetInput,
    Experiment,
    LoggedModel,
    ModelVersion,
    Point,
    RegisteredModel,
    Run,
)
from mlrelay_mock._paging import runs_page_v2
from mlrelay_mock._search import (
    Clause,
    EntitySchema,
    OrderKey,
    filter_items,
    page,
    sort_items,
)
from mlrelay_mock._sources import is_local, local_path, outside_run, within
from mlrelay_mock._validation import (
    MAX_BATCH_ENTITIES,
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
    MAX_EXPERIMENT_NAME,
    MAX_EXPERIMENT_TAG_VALUE,
    MAX_PARAM_VALUE,
    MAX_REGISTRY_TAG_VALUE,
    MAX_RUN_TAG_VALUE,
    V2_MAX_PARAM_VALUE,
    V2_MAX_TAG_VALUE,
    check_key,
    check_key_v2,
    check_length,
    check_model_name,
    check_value_v2,
)

__all__ = ["MetricIn", "Store"]

P = ParamSpec("P")
R = TypeVar("R")

# (key, value, timestamp, step, model_id, dataset_name, dataset_digest)
MetricIn = tuple[str, float, int, int, str, str, str]

RUN_NAME_TAG = "mlflow.runName"
STAGES = ("None", "Staging", "Production", "Archived")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
_NAN_KEY = "nan"


def mutation(
    method: Callable[Concatenate[Store, P], R],
) -> Callable[Concatenate[Store, P], R]:
    """Mark a state change: on success it is appended to the store's operation log."""

    def logged(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result = method(self, *args, **kwargs)
        self._record(method.__name__, dict(kwargs))
        return result

    functools.update_wrapper(logged, method)
    logged.__dict__["_mutation"] = method
    return logged


class Store:
    """All experiments, runs, registered models and logged models of one server.

    Args:
        oplog: the ``ops.jsonl`` file to replay and append to, or ``None`` for memory only.
        v3: whether to behave like MLflow 3 (``False`` copies the 2.7 differences, §15).
    """

    def __init__(
        self,
        oplog: Path | None = None,
        *,
        v3: bool = True,
        artifact_root: str = "mlflow-artifacts:",
    ) -> None:
        self.v3 = v3
        self.artifact_root = artifact_root.rstrip("/")  # where experiments' artifacts go
        self.experiments: dict[str, Experiment] = {}
        self.runs: dict[str, Run] = {}
        self.models: dict[str, RegisteredModel] = {}
        self.logged_models: dict[str, LoggedModel] = {}
        self._next_experiment = 1
        self._log: IO[str] | None = None
        self.experiments["0"] = Experiment(
            experiment_id="0",
            name="Default",
            artifact_location=f"{self.artifact_root}/0",
            creation_time=0,
            last_update_time=0,
        )
        if oplog is not None:
            self._replay(oplog)
            oplog.parent.mkdir(parents=True, exist_ok=True)
            self._log = oplog.open("a", encoding="utf-8")

    # -- persistence ----------------------------------------------------------------------

    def _record(self, name: str, kwargs: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(json.dumps([name, kwargs]) + "\n")
            self._log.flush()

    def _replay(self, oplog: Path) -> None:
        if not oplog.exists():
            return
        with oplog.open(encoding="utf-8") as f:
            for line in f:
                try:
                    name, kwargs = json.loads(line)
                except ValueError:
                    break  # a torn last line from a killed server: everything before it counts
                getattr(type(self), name).__dict__["_mutation"](self, **kwargs)

    def close(self) -> None:
        """Close the operation log."""
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- experiments ------------------------------------------------------------------------

    def experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id (deleted ones included); 400 for a non-numeric id
        (2.7: 404, it looks the id up as it is)."""
        if not experiment_id.isdigit() and not self.v3:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        if not experiment_id.isdigit():
            raise invalid(
                f"Invalid experiment ID: '{experiment_id}'. Experiment IDs must be integers."
            )
        found = self.experiments.get(str(int(experiment_id)))
        if found is None:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return found

    def experiment_by_name(self, name: str) -> Experiment:
        """The experiment with this name, preferring an active one over a deleted one."""
        matches = [e for e in self.experiments.values() if e.name == name]
        if not matches:
            raise not_found(f"Could not find experiment with name '{name}'")
        matches.sort(key=lambda e: e.lifecycle_stage != "active")
        return matches[0]

    def _check_experiment_name(self, name: str) -> None:
        if self.v3:  # 2.7 has no length limit on experiment names
            check_length("name", name, MAX_EXPERIMENT_NAME)
        if any(e.name == name for e in self.experiments.values()):
            raise MlflowError(
                "RESOURCE_ALREADY_EXISTS",
                f"Experiment(name={name}) already exists. Error: (sqlite3.IntegrityError) "
                "UNIQUE constraint failed: experiments.workspace, experiments.name",
            )

    def _check_experiment_tag(self, key: str, value: str) -> None:
        if not self.v3:
            check_key_v2(key, kind="tag")
            check_value_v2("Tag", value, V2_MAX_TAG_VALUE)
            return
        check_key(key, entity="key")
        check_length("value", value, MAX_EXPERIMENT_TAG_VALUE)

    @mutation
    def create_experiment(
        self, *, name: str, artifact_location: str, tags: Sequence[Sequence[str]], now: int
    ) -> str:
        """Create an experiment; 400 ``RESOURCE_ALREADY_EXISTS`` when the name is taken."""
        self._check_experiment_name(name)
        for key, value in tags:
            self._check_experiment_tag(key, value)
        if artifact_location.startswith("runs:"):
            raise invalid("Experiment artifact location cannot be a runs:/ URI")
        experiment_id = str(self._next_experiment)
        self._next_experiment += 1
        self.experiments[experiment_id] = Experiment(
            experiment_id=experiment_id,
            name=name,
            artifact_location=artifact_location or f"{self.artifact_root}/{experiment_id}",
            creation_time=now,
            last_update_time=now,
            tags=_pairs(tags),
        )
        return experiment_id

    @mutation
    def rename_experiment(self, *, experiment_id: str, new_name: str, now: int) -> None:
        """Rename; another experiment's name is a 400 ``BAD_REQUEST`` (an SQL integrity error)."""
        experiment = self.experiment(experiment_id)
        self._active_experiment(experiment)
        if experiment.name == new_name:
            return
        check_length("name", new_name, MAX_EXPERIMENT_NAME)
        if any(e.name == new_name for e in self.experiments.values()):
            raise bad_request(
                "(sqlite3.IntegrityError) UNIQUE constraint failed: "
                "experiments.workspace, experiments.name"
            )
        experiment.name = new_name
        experiment.last_update_time = now

    def _active_experiment(self, experiment: Experiment) -> None:
        if experiment.lifecycle_stage != "active":
            raise invalid(
                f"The experiment {experiment.experiment_id} must be in the 'active' state. "
                f"Current state is {experiment.lifecycle_stage}."
            )

    def _move_experiment(self, experiment_id: str, source: str, target: str, now: int) -> None:
        experiment = self.experiment(experiment_id)
        if experiment.lifecycle_stage != source:
            qualifier = "deleted " if source == "deleted" else ""
            raise not_found(f"No {qualifier}Experiment with id={experiment_id} exists")
        experiment.lifecycle_stage = target
        experiment.last_update_time = now
        for run in self.runs.values():
            if run.experiment_id == experiment.experiment_id:
                run.lifecycle_stage = target

    @mutation
    def delete_experiment(self, *, experiment_id: str, now: int) -> None:
        """Soft-delete an experiment and its runs; a second delete is a 404."""
        self._move_experiment(experiment_id, "active", "deleted", now)

    @mutation
    def restore_experiment(self, *, experiment_id: str, now: int) -> None:
        """Restore a deleted experiment and its runs; restoring an active one is a 404."""
        self._move_experiment(experiment_id, "deleted", "active", now)

    @mutation
    def set_experiment_tag(self, *, experiment_id: str, key: str, value: str) -> None:
        """Set (or overwrite) an experiment tag; over-long values are a 400, not truncated."""
        experiment = self.experiment(experiment_id)
        self._active_experiment(experiment)
        self._check_experiment_tag(key, value)
        experiment.tags[key] = value

    @mutation
    def delete_experiment_tag(self, *, experiment_id: str, key: str) -> None:
        """Delete an experiment tag; a missing tag is a 404."""
        experiment = self.experiment(experiment_id)
        self._active_experiment(experiment)
        if key not in experiment.tags:
            raise not_found(f"No tag with name: {key} in experiment with id {experiment_id}")
        del experiment.tags[key]

    def search_experiments(
        self,
        *,
        view_type: str,
        clauses: list[Clause],
        order_by: list[OrderKey],
        max_results: int,
        page_token: str | None,
    ) -> tuple[list[Experiment], str | None]:
        """One page of experiments matching the filter, in MLflow's default order."""
        items = [
            e for e in self.experiments.values() if _view_matches(view_type, e.lifecycle_stage)
        ]
        items.sort(key=lambda e: int(e.experiment_id))
        items.sort(key=lambda e: e.creation_time, reverse=True)
        items = filter_items(items, clauses, EXPERIMENT_SCHEMA)
        items = sort_items(items, order_by, EXPERIMENT_SCHEMA)
        return page(items, page_token, max_results)

    # -- runs -------------------------------------------------------------------------------

    def run(self, run_id: str) -> Run:
        """The run with this id (deleted ones included); 404 if there is none."""
        found = self.runs.get(run_id)
        if found is None:
            raise not_found(f"Run with id={run_id} not found")
        return found

    def active_run(self, run_id: str) -> Run:
        """The run, which must not be deleted (writes to a deleted run are a 400)."""
        run = self.run(run_id)
        if run.lifecycle_stage != "active":
            raise invalid(
                f"The run {run_id} must be in the 'active' state. "
                f"Current state is {run.lifecycle_stage}."
            )
        return run

    @mutation
    def create_run(
        self,
        *,
        run_id: str,
        experiment_id: str,
        user_id: str,
        run_name: str,
        start_time: int,
        tags: Sequence[Sequence[str]],
    ) -> Run:
        """Create a run; ``run_name`` must already be resolved against an ``mlflow.runName`` tag."""
        if not experiment_id:
            raise bad_request(
                "(sqlite3.IntegrityError) FOREIGN KEY constraint failed: runs.experiment_id"
            )
        experiment = self.experiment(experiment_id)
        self._active_experiment(experiment)
        checked = self._check_tags(tags)
        checked[RUN_NAME_TAG] = run_name
        run = Run(
            run_id=run_id,
            experiment_id=experiment.experiment_id,
            run_name=run_name,
            user_id=user_id,
            start_time=start_time,
            artifact_uri=f"{experiment.artifact_location}/{run_id}/artifacts",
            tags=checked,
        )
        self.runs[run_id] = run
        return run

    @mutation
    def update_run(
        self, *, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> Run:
        """Change only the fields given; a new name also rewrites the ``mlflow.runName`` tag."""
        run = self.active_run(run_id)
        if status is not None:
            run.status = status
        if end_time is not None:
            run.end_time = end_time
        if run_name:
            run.run_name = run_name
            run.tags[RUN_NAME_TAG] = run_name
        return run

    @mutation
    def delete_run(self, *, run_id: str) -> None:
        """Soft-delete a run (idempotent)."""
        self.run(run_id).lifecycle_stage = "deleted"

    @mutation
    def restore_run(self, *, run_id: str) -> None:
        """Restore a deleted run (idempotent)."""
        self.run(run_id).lifecycle_stage = "active"

    def _check_tags(self, tags: Sequence[Sequence[str]]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for key, value in tags:
            if not self.v3:
                check_key_v2(key, kind="tag")
                check_value_v2("Tag", value, V2_MAX_TAG_VALUE)
                checked[key] = value
                continue
            check_key(key, entity="key")
            checked[key] = value[:MAX_RUN_TAG_VALUE]
        return checked

    @mutation
    def log_batch(
        self,
        *,
        run_id: str,
        metrics: Sequence[Sequence[Any]],
        params: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]],
        single_param: bool = False,
    ) -> None:
        """Log metrics, params and tags all-or-nothing, with MLflow's limits and dedup.

        Args:
            run_id: the run.
            metrics: ``MetricIn`` tuples.
            params: ``(key, value)`` pairs; a different value for a logged key is a 400.
            tags: ``(key, value)`` pairs; they overwrite, the last one in a batch wins.
            single_param: use ``log-parameter``'s conflict message instead of ``log-batch``'s.
        """
        _check_batch_size(len(metrics), len(params), len(tags))
        if not _RUN_ID_RE.match(run_id):
            raise invalid(f"Invalid run ID: '{run_id}'")
        run = self.active_run(run_id)
        new_points: list[tuple[str, Point, tuple[str, int, int, float | str]]] = []
        pending: set[tuple[str, int, int, float | str]] = set()
        checked_keys: set[str] = set()
        for key, value, timestamp, step, model_id, dataset_name, dataset_digest in metrics:
            if key not in checked_keys:
                if self.v3:
                    check_key(key, entity="Metric name", path="name")
                else:
                    check_key_v2(key, kind="metric")
                checked_keys.add(key)
            value = float(value)
            if math.isinf(value):
                value = math.copysign(DOUBLE_MAX, value)
            identity = (key, timestamp, step, _NAN_KEY if math.isnan(value) else value)
            if identity in run.seen or identity in pending:
                if math.isnan(value) and not self.v3 and identity in run.seen:
                    raise bad_request(
                        "(raised as a result of Query-invoked autoflush) "
                        "(sqlite3.IntegrityError) UNIQUE constraint failed: metrics"
                    )
                continue
            pending.add(identity)
            point = Point(timestamp, step, value, model_id, dataset_name, dataset_digest)
            new_points.append((key, point, identity))
        new_params = self._check_params(run, params, single_param=single_param)
        new_tags = self._check_tags(tags)
        for key, point, identity in new_points:
            run.seen.add(identity)
            run.history.setdefault(key, []).append(point)
            if point.model_id and (linked := self.logged_models.get(point.model_id)):
                linked.metrics.append((key, point, run_id))
            run.sorted_keys.discard(key)
            latest = run.latest.get(key)
            if latest is None or _latest_order(point) >= _latest_order(latest):
                run.latest[key] = point
        run.params.update(new_params)
        run.tags.update(new_tags)
        if RUN_NAME_TAG in new_tags:
            run.run_name = new_tags[RUN_NAME_TAG]

    def _check_params(
        self, run: Run, params: Sequence[Sequence[str]], *, single_param: bool
    ) -> dict[str, str]:
        keys = [key for key, _ in params]
        duplicates = sorted({k for k in keys if keys.count(k) > 1}) if len(params) > 1 else []
        if duplicates:
            raise invalid(
                f"Duplicate parameter keys have been submitted: {duplicates}. Please ensure "
                "the request contains only one param value per param key."
            )
        checked: dict[str, str] = {}
        conflicts = []
        for key, value in params:
            if self.v3:
                check_key(key, entity="Param key")
                value = value[:MAX_PARAM_VALUE]
            else:
                check_key_v2(key, kind="param")
                check_value_v2("Param", value, V2_MAX_PARAM_VALUE)
            old = run.params.get(key)
            if old is not None and old != value:
                conflicts.append({"key": key, "old_value": old, "new_value": value})
            checked[key] = value
        if conflicts and single_param:
            c = conflicts[0]
            raise invalid(
                f"Changing param values is not allowed. Param with key='{c['key']}' was "
                f"already logged with value='{c['old_value']}' for run ID='{run.run_id}'. "
                f"Attempted logging new value '{c['new_value']}'."
            )
        if conflicts:
            raise invalid(
                f"Changing param values is not allowed. Params were already logged='{conflicts}'"
                f" for run ID='{run.run_id}'."
            )
        return checked

    @mutation
    def delete_tag(self, *, run_id: str, key: str) -> None:
        """Delete a run tag; a missing tag is a 404."""
        run = self.active_run(run_id)
        if key not in run.tags:
            raise not_found(f"No tag with name: {key} in run with id {run_id}")
        del run.tags[key]

    @mutation
    def log_inputs(
        self, *, run_id: str, datasets: Sequence[dict[str, Any]], models: Sequence[str]
    ) -> None:
        """Link datasets (identified by name and digest) and logged models as run inputs."""
        run = self.active_run(run_id)
        new = [DatasetInput(**d) for d in datasets]
        for d in new:
            check_length("name", d.name, 500)
            check_length("digest", d.digest, 36)
            check_length("source", d.source, 65535)
            for key, value in d.tags.items():
                check_length("key", key, 255)
                check_length("value", value, 500)
        for d in new:
            # The same dataset again is a no-op, even with a different context tag.
            if not any(x.name == d.name and x.digest == d.digest for x in run.datasets):
                run.datasets.append(d)
        for model_id in models:
            if model_id not in run.model_inputs:
                run.model_inputs.append(model_id)

    @mutation
    def log_outputs(self, *, run_id: str, models: Sequence[Sequence[Any]]) -> None:
        """Link logged models as run outputs."""
        run = self.active_run(run_id)
        for model_id, step in models:
            if (model_id, step) not in run.model_outputs:
                run.model_outputs.append((model_id, step))

    def history(self, run_id: str, key: str) -> list[Point]:
        """A metric's points ordered by (timestamp, step, value); empty for an unknown run."""
        run = self.runs.get(run_id)
        if run is None or key not in run.history:
            return []
        points = run.history[key]
        if key not in run.sorted_keys:
            # Sort once, in place; paging through a long history then costs O(page).
            points.sort(key=lambda p: (p.timestamp, p.step, p.sort_value()))
            run.sorted_keys.add(key)
        return list(points)

    def search_runs(
        self,
        *,
        experiment_ids: list[str],
        view_type: str,
        clauses: list[Clause],
        order_by: list[OrderKey],
        max_results: int,
        page_token: str | None,
    ) -> tuple[list[Run], str | None]:
        """One page of runs in the given experiments that match the filter."""
        wanted = set(experiment_ids)
        items = [
            r
            for r in self.runs.values()
            if r.experiment_id in wanted and _view_matches(view_type, r.lifecycle_stage)
        ]
        items.sort(key=lambda r: r.run_id)
        items.sort(key=lambda r: r.start_time, reverse=True)
        items = filter_items(items, clauses, RUN_SCHEMA)
        items = sort_items(items, order_by, RUN_SCHEMA)
        if not self.v3:
            return runs_page_v2(items, page_token, max_results)
        return page(items, page_token, max_results)

    # -- model registry ---------------------------------------------------------------------

    def registered_model(self, name: str) -> RegisteredModel:
        """The registered model with this name; 404 if none."""
        found = self.models.get(name)
        if found is None:
            raise not_found(f"Registered Model with name={name} not found")
        return found

    def model_version(self, name: str, version: str) -> ModelVersion:
        """One version of a registered model; 400 for a non-numeric version, 404 if missing."""
        model = self.registered_model(name)
        if not version.strip().isdigit():
            raise invalid(f"Parameter 'version' must be an integer, got '{version}'.")
        found = model.versions.get(int(version))
        if found is None:
            raise not_found(f"Model Version (name={name}, version={version}) not found")
        return found

    def _check_registry_tag(self, key: str, value: str) -> None:
        check_key(key, entity="key")
        check_length("value", value, MAX_REGISTRY_TAG_VALUE)

    @mutation
    def create_registered_model(
        self, *, name: str, tags: Sequence[Sequence[str]], description: str, now: int
    ) -> RegisteredModel:
        """Create a registered model; an existing name is a 400 ``RESOURCE_ALREADY_EXISTS``."""
        if self.v3:  # 2.7 takes any name, '/' and ':' included
            check_model_name(name)
        for key, value in tags:
            self._check_registry_tag(key, value)
        if name in self.models:
            raise MlflowError(
                "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists."
            )
        model = RegisteredModel(name, now, now, description=description, tags=_pairs(tags))
        self.models[name] = model
        return model

    @mutation
    def rename_registered_model(self, *, name: str, new_name: str, now: int) -> RegisteredModel:
        """Rename a registered model and its versions."""
        model = self.registered_model(name)
        check_model_name(new_name)
        if new_name != name and new_name in self.models:
            raise MlflowError(
                "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={new_name}) already exists."
            )
        del self.models[name]
        model.name = new_name
        model.last_updated_timestamp = now
        for version in model.versions.values():
            version.name = new_name
        self.models[new_name] = model
        return model

    @mutation
    def update_registered_model(self, *, name: str, description: str, now: int) -> RegisteredModel:
        """Set a registered model's description."""
        model = self.registered_model(name)
        model.description = description
        model.last_updated_timestamp = now
        return model

    @mutation
    def delete_registered_model(self, *, name: str) -> None:
        """Delete a registered model and its versions."""
        self.registered_model(name)
        del self.models[name]

    @mutation
    def set_registered_model_tag(self, *, name: str, key: str, value: str) -> None:
        """Set a registered model tag."""
        model = self.registered_model(name)
        self._check_registry_tag(key, value)
        model.tags[key] = value

    @mutation
    def delete_registered_model_tag(self, *, name: str, key: str) -> None:
        """Delete a registered model tag; a missing one is a 404."""
        model = self.registered_model(name)
        if key not in model.tags:
            raise not_found(f"No tag with name: {key} in model with name {name}")
        del model.tags[key]

    @mutation
    def set_alias(self, *, name: str, alias: str, version: str) -> None:
        """Point an alias at a version (moving it if it exists)."""
        _check_alias(alias)
        target = self.model_version(name, version)
        model = self.registered_model(name)
        old = model.aliases.get(alias)
        if old is not None and old in model.versions:
            model.versions[old].aliases.remove(alias)
        model.aliases[alias] = target.version
        target.aliases.append(alias)

    @mutation
    def delete_alias(self, *, name: str, alias: str) -> None:
        """Remove an alias (a missing alias is a no-op)."""
        model = self.registered_model(name)
        old = model.aliases.pop(alias, None)
        if old is not None and old in model.versions:
            model.versions[old].aliases.remove(alias)

    def version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at; a 400 (sic) when the alias is not set."""
        model = self.registered_model(name)
        version = model.aliases.get(alias)
        if version is None or version not in model.versions:
            # A missing alias is a 400 on MLflow 3.17.2, not a 404.
            raise invalid(f"Registered model alias {alias} not found.")
        return model.versions[version]

    def _check_local_source(self, source: str, run_id: str) -> None:
        """A local source must lie in its run's local artifact directory (see _sources)."""
        if run_id:
            run = self.runs.get(run_id)
            if run is None:
                raise invalid(
                    f"Invalid model version source: '{source}'. The run_id request parameter "
                    "must identify the resource that contains the source."
                )
            resolved = local_path(source)
            if within(resolved, run.artifact_uri):
                return
            source = str(resolved)
        raise outside_run(source)

    def _check_model_source(self, source: str, model_id: str) -> None:
        """A version of a logged model: its source must lie in the model's artifacts."""
        logged = self.logged_models.get(model_id)
        not_in_model = invalid(
            f"Invalid model version source: '{source}'. The model_id request parameter must "
            "identify the resource that contains the source."
        )
        if is_local(source):
            if logged is None:
                raise not_in_model
            resolved = local_path(source)
            if within(resolved, logged.artifact_uri):
                return
            raise invalid(
                f"Invalid model version source: '{resolved}'. To use a local path as a model "
                "version source, the model_id request parameter has to be specified and the "
                "local path has to be contained within the artifact directory of the run "
                "specified by the model_id."
            )
        if ".." in source.split("/"):
            raise invalid(f"Invalid model version source: '{source}'.")
        if source.startswith("runs:"):
            raise not_in_model
        if source.startswith("models:/m-") and source[len("models:/") :].strip("/") != model_id:
            raise not_in_model
        if source.startswith("mlflow-artifacts:") and (
            logged is None or not source.startswith(logged.artifact_uri)
        ):
            raise not_in_model

    def _check_source(self, source: str, run_id: str) -> None:
        if is_local(source, v3=self.v3):
            self._check_local_source(source, run_id)
            return
        if ".." in source.split("/"):
            raise invalid(f"Invalid model version source: '{source}'.")
        if source.startswith("runs:/") and self.v3:  # 2.7 does not check runs:/ sources
            if not run_id or source[len("runs:/") :].split("/")[0] != run_id:
                raise invalid(
                    f"Invalid model version source: '{source}'. The run_id request parameter "
                    "must identify the resource that contains the source."
                )
        elif source.startswith("mlflow-artifacts:") and run_id:
            run = self.runs.get(run_id)
            if run is not None and not source.startswith(run.artifact_uri):
                raise outside_run(source)

    def _storage_location(self, source: str, run_id: str) -> tuple[str, str]:
        """Where a new version's files are, and its run id (filled in from a logged model).

        Like MLflow's SQL store, only ``models:/`` sources are resolved; ``runs:/`` stay as given.
        """
        if not source.startswith("models:/"):
            return source, run_id
        path = source[len("models:/") :].strip("/")
        try:
            if "/" not in path and "@" not in path:
                logged = self.logged_model(path, allow_deleted=True)
                return logged.artifact_uri, run_id or logged.source_run_id
            if "@" in path:
                name, alias = path.split("@", 1)
                return self.version_by_alias(name, alias).download_uri, run_id
            name, version = path.rsplit("/", 1)
            return self.model_version(name, version).download_uri, run_id
        except MlflowError as error:
            raise invalid(
                f"Unable to fetch model from model URI source artifact location '{source}'."
                f"Error: {error.message}"
            ) from None

    @mutation
    def create_model_version(
        self,
        *,
        name: str,
        source: str,
        run_id: str,
        tags: Sequence[Sequence[str]],
        run_link: str,
        description: str,
        model_id: str,
        now: int,
    ) -> ModelVersion:
        """Create the next version of a registered model (each call allocates a number)."""
        model = self.registered_model(name)
        if self.v3 and _pairs(tags).get(PROMPT_TAG, "false").lower() == "true":
            if source not in PROMPT_SOURCES:  # a prompt's source is only a placeholder
                raise invalid(
                    f"Invalid prompt source: '{source}'. Prompt sources must use an MLflow "
                    "placeholder."
                )
        elif self.v3 and model_id:
            self._check_model_source(source, model_id)
        else:
            self._check_source(source, run_id)
        for key, value in tags:
            self._check_registry_tag(key, value)
        storage_location, run_id = self._storage_location(source, run_id)
        version = ModelVersion(
            name=name,
            version=model.next_version,
            creation_timestamp=now,
            last_updated_timestamp=now,
            source=source,
            run_id=run_id,
            run_link=run_link,
            description=description,
            model_id=model_id,
            storage_location=storage_location,
            tags=_pairs(tags),
        )
        model.versions[version.version] = version
        model.next_version += 1
        model.last_updated_timestamp = now
        if self.v3 and model_id and (logged := self.logged_models.get(model_id)):
            # MLflow 3 lists the versions registered from a logged model in this tag.
            listed = json.loads(logged.tags.get(MODEL_VERSIONS_TAG, "[]"))
            listed.append({"name": name, "version": version.version})
            logged.tags[MODEL_VERSIONS_TAG] = json.dumps(listed)
        return version

    @mutation
    def update_model_version(
        self, *, name: str, version: str, description: str, now: int
    ) -> ModelVersion:
        """Set a version's description."""
        found = self.model_version(name, version)
        found.description = description
        found.last_updated_timestamp = now
        return found

    @mutation
    def delete_model_version(self, *, name: str, version: str) -> None:
        """Delete a version and the aliases that point at it; a second delete is a 404."""
        found = self.model_version(name, version)
        model = self.registered_model(name)
        del model.versions[found.version]
        for alias in found.aliases:
            model.aliases.pop(alias, None)

    @mutation
    def transition_stage(
        self, *, name: str, version: str, stage: str, archive_existing: bool, now: int
    ) -> ModelVersion:
        """Move a version to a stage (case-insensitive), optionally archiving the others there."""
        canonical = {s.lower(): s for s in STAGES}.get(stage.lower())
        if canonical is None:
            raise invalid(
                f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}."
            )
        found = self.model_version(name, version)
        if archive_existing and canonical in ("Staging", "Production"):
            for other in self.registered_model(name).versions.values():
                if other is not found and other.current_stage == canonical:
                    other.current_stage = "Archived"
                    other.last_updated_timestamp = now
        found.current_stage = canonical
        found.last_updated_timestamp = now
        return found

    @mutation
    def set_model_version_tag(self, *, name: str, version: str, key: str, value: str) -> None:
        """Set a version tag."""
        found = self.model_version(name, version)
        self._check_registry_tag(key, value)
        found.tags[key] = value

    @mutation
    def delete_model_version_tag(self, *, name: str, version: str, key: str) -> None:
        """Delete a version tag; a missing one is a 404."""
        found = self.model_version(name, version)
        if key not in found.tags:
            raise not_found(f"No tag with name: {key} in model version {name} {version}")
        del found.tags[key]

    def search_registered_models(
        self,
        *,
        clauses: list[Clause],
        order_by: list[OrderKey],
        max_results: int,
        page_token: str | None,
    ) -> tuple[list[RegisteredModel], str | None]:
        """One page of registered models, by name by default."""
        items = sorted(self.models.values(), key=lambda m: m.name)
        clauses, exclude_prompts = _prompt_clauses(clauses, v3=self.v3)
        if exclude_prompts:
            items = [m for m in items if m.tags.get(PROMPT_TAG) != "true"]
        items = filter_items(items, clauses, REGISTERED_MODEL_SCHEMA)
        items = sort_items(items, order_by, REGISTERED_MODEL_SCHEMA)
        return page(items, page_token, max_results)

    def search_model_versions(
        self,
        *,
        clauses: list[Clause],
        order_by: list[OrderKey],
        max_results: int,
        page_token: str | None,
    ) -> tuple[list[ModelVersion], str | None]:
        """One page of model versions, the last updated first by default."""
        items = [v for m in self.models.values() for v in m.versions.values()]
        items.sort(key=lambda v: (v.name, -v.version))
        clauses, exclude_prompts = _prompt_clauses(clauses, v3=self.v3)
        if exclude_prompts:
            prompts = {v.name for v in items if v.tags.get(PROMPT_TAG) == "true"}
            items = [v for v in items if v.name not in prompts]
        items = filter_items(items, clauses, MODEL_VERSION_SCHEMA)
        # MLflow's default: last updated first, then name ascending, version descending.
        order_by = order_by or [OrderKey("attribute", "last_updated_timestamp", False)]
        items = sort_items(items, order_by, MODEL_VERSION_SCHEMA)
        return page(items, page_token, max_results)

    # -- logged models (MLflow 3) ------------------------------------------------------------

    def logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        """A logged model; 404 if missing (or deleted, unless ``allow_deleted``)."""
        found = self.logged_models.get(model_id)
        if found is None or (found.lifecycle_stage == "deleted" and not allow_deleted):
            raise not_found(f"Logged model with ID '{model_id}' not found.")
        return found

    @mutation
    def create_logged_model(
        self,
        *,
        model_id: str,
        experiment_id: str,
        name: str,
        model_type: str,
        source_run_id: str,
        params: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]],
        now: int,
    ) -> LoggedModel:
        """Create a pending logged model in an experiment."""
        experiment = self.experiment(experiment_id)
        self._active_experiment(experiment)
        # MLflow stores source_run_id as given, without looking the run up.
        model = LoggedModel(
            model_id=model_id,
            experiment_id=experiment.experiment_id,
            name=name,
            artifact_uri=f"{experiment.artifact_location}/models/{model_id}/artifacts",
            creation_timestamp_ms=now,
            last_updated_timestamp_ms=now,
            model_type=model_type,
            source_run_id=source_run_id,
            params=_pairs(params),
            tags=_pairs(tags),
        )
        self.logged_models[model_id] = model
        return model

    @mutation
    def finalize_logged_model(self, *, model_id: str, status: str, now: int) -> LoggedModel:
        """Set a logged model's status (``LOGGED_MODEL_READY`` or ``_UPLOAD_FAILED``)."""
        model = self.logged_model(model_id)
        model.status = status
        model.last_updated_timestamp_ms = now
        return model

    @mutation
    def delete_logged_model(self, *, model_id: str) -> None:
        """Soft-delete a logged model."""
        self.logged_model(model_id).lifecycle_stage = "deleted"

    @mutation
    def set_logged_model_tags(self, *, model_id: str, tags: Sequence[Sequence[str]]) -> None:
        """Set logged model tags."""
        model = self.logged_model(model_id)
        model.tags.update(self._check_tags(tags))

    @mutation
    def delete_logged_model_tag(self, *, model_id: str, key: str) -> None:
        """Delete a logged model tag; a missing one is a 404."""
        model = self.logged_model(model_id)
        if key not in model.tags:
            raise not_found(f"No tag with key '{key}' found for logged model '{model_id}'.")
        del model.tags[key]

    @mutation
    def log_logged_model_params(self, *, model_id: str, params: Sequence[Sequence[str]]) -> None:
        """Add params to a logged model."""
        model = self.logged_model(model_id)
        for key, _ in params:
            check_key(key, entity="Param key")
        model.params.update({k: v[:MAX_PARAM_VALUE] for k, v in params})

    def search_logged_models(
        self,
        *,
        experiment_ids: list[str],
        clauses: list[Clause],
        datasets: list[DatasetFilter],
        order_by: list[LoggedOrder],
        max_results: int,
        page_token: str | None,
    ) -> tuple[list[LoggedModel], str | None]:
        """One page of the active logged models of some experiments that match (see
        :mod:`mlrelay_mock._logged_search`), newest first unless ``order_by`` says otherwise."""
        checked = check_filter(clauses)
        if any(not d.name for d in datasets):
            raise invalid("`dataset_name` in the `datasets` clause must be specified.")
        items = [
            m
            for m in self.logged_models.values()
            if m.experiment_id in experiment_ids and m.lifecycle_stage == "active"
        ]
        items = ordered(matching(items, checked, datasets), order_by)
        return page(items, page_token, max_results)


def _pairs(pairs: Sequence[Sequence[str]]) -> dict[str, str]:
    return {key: value for key, value in pairs}


def _view_matches(view_type: str, lifecycle_stage: str) -> bool:
    if view_type == "ALL":
        return True
    if view_type == "DELETED_ONLY":
        return lifecycle_stage == "deleted"
    return lifecycle_stage == "active"


def _latest_order(point: Point) -> tuple[int, int, float]:
    return (point.step, point.timestamp, point.sort_value())


def _check_batch_size(metrics: int, params: int, tags: int) -> None:
    for count, limit, what in (
        (metrics, MAX_BATCH_METRICS, "metrics"),
        (params, MAX_BATCH_PARAMS, "params"),
        (tags, MAX_BATCH_TAGS, "tags"),
    ):
        if count > limit:
            raise invalid(
                f"A batch logging request can contain at most {limit} {what}. Got {count} "
                f"{what}. Please split up {what} across multiple requests and try again."
            )
    total = metrics + params + tags
    if total > MAX_BATCH_ENTITIES:
        raise invalid(
            f"A batch logging request can contain at most {MAX_BATCH_ENTITIES} metrics, "
            f"params, and tags. Got {total} total. Please split up metrics, params, and tags "
            "across multiple requests and try again."
        )


def _check_alias(alias: str) -> None:
    if not alias or not _ALIAS_RE.match(alias) or len(alias) > 255:
        raise invalid(
            f"Invalid alias name: '{alias}'. Alias names may only contain alphanumerics, "
            "underscores (_) and dashes (-), and at most 255 characters."
        )
    if alias.lower() == "latest" or _VERSION_ALIAS_RE.match(alias):
        raise invalid(
            f"'{alias}' alias name (case insensitive) is reserved for internal use. "
            "Please choose a different alias name."
        )


def _run_value(run: Run, entity: str, key: str) -> Any:
    if entity == "metric":
        point = run.latest.get(key)
        return None if point is None else point.value
    if entity == "param":
        return run.params.get(key)
    if entity == "tag":
        return run.tags.get(key)
    if entity == "dataset":
        values = {getattr(d, key, None) for d in run.datasets}
        if key == "context":
            values = {d.tags.get("mlflow.data.context") for d in run.datasets}
        return _AnyOf(values - {None}) if values - {None} else None
    return getattr(run, key)


class _AnyOf:
    """A set of values that compares true if any member does (datasets of a run)."""

    def __init__(self, values: set[Any]) -> None:
        self.values = values

    def __eq__(self, other: object) -> bool:
        return other in self.values

    def __ne__(self, other: object) -> bool:
        return other not in self.values

    def __hash__(self) -> int:
        return hash(frozenset(self.values))

    def __str__(self) -> str:
        return " ".join(sorted(map(str, self.values)))


RUN_SCHEMA: EntitySchema[Run] = EntitySchema(
    name="run",
    string_attributes=(
        "run_id",
        "run_name",
        "status",
        "user_id",
        "artifact_uri",
        "lifecycle_stage",
    ),
    numeric_attributes=("start_time", "end_time"),
    getter=_run_value,
    entities=("metric", "param", "tag", "dataset"),
    set_attributes=("run_id",),
    aliases={"created": "start_time", "run_uuid": "run_id", "Created": "start_time"},
)

EXPERIMENT_SCHEMA: EntitySchema[Experiment] = EntitySchema(
    name="experiment",
    string_attributes=("name",),
    numeric_attributes=("creation_time", "last_update_time", "experiment_id"),
    getter=lambda e, entity, key: e.tags.get(key) if entity == "tag" else getattr(e, key),
)

PROMPT_TAG = "mlflow.prompt.is_prompt"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
PROMPT_SOURCES = ("dummy-source", "prompt-template")


def _prompt_clauses(clauses: list[Clause], *, v3: bool) -> tuple[list[Clause], bool]:
    """(the clauses to apply, whether prompts are left out), as MLflow 3's registry does
    (MLflow 2 has no prompts: the tag is compared like any other).

    Prompts live in the registry as models tagged ``mlflow.prompt.is_prompt = 'true'``.
    Unless the filter asks for prompts (``= 'true'`` or ``!= 'false'`` on that tag), a
    search leaves them out and ignores the filter's clauses on that tag, so MLflow 3's
    client, which always sends ``tags.`mlflow.prompt.is_prompt` != 'true'``, finds the
    models that do not carry the tag at all.
    """
    if not v3:
        return clauses, False
    for clause in clauses:
        if clause.entity == "tag" and clause.key == PROMPT_TAG:
            value = str(clause.value).lower()
            if (clause.op, value) in (("=", "true"), ("!=", "false")):
                return clauses, False
            break
    return [c for c in clauses if not (c.entity == "tag" and c.key == PROMPT_TAG)], True


REGISTERED_MODEL_SCHEMA: EntitySchema[RegisteredModel] = EntitySchema(
    name="registered model",
    string_attributes=("name",),
    numeric_attributes=("creation_timestamp", "last_updated_timestamp"),
    getter=lambda m, entity, key: m.tags.get(key) if entity == "tag" else getattr(m, key),
)


def _version_value(version: ModelVersion, entity: str, key: str) -> Any:
    if entity == "tag":
        return version.tags.get(key)
    if key == "source_path":
        return version.source
    if key == "version_number":
        return version.version
    return getattr(version, key)


MODEL_VERSION_SCHEMA: EntitySchema[ModelVersion] = EntitySchema(
    name="model version",
    string_attributes=("name", "run_id", "source_path", "current_stage"),
    numeric_attributes=("version_number", "creation_timestamp", "last_updated_timestamp"),
    getter=_version_value,
    set_attributes=("name", "run_id"),
)
