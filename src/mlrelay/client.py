"""``mlrelay.Client``: one typed method per MLflow REST tracking operation.

The client is synchronous and talks to the server directly; it is what the fluent
API's background sender and ``mlrelay sync`` are built on. Method names follow
MLflow's ``MlflowClient`` where one exists.

Exactly-once creation: MLflow assigns run ids on the server, so a ``runs/create``
whose response is lost cannot simply be sent again. :meth:`Client.create_run` sends
a client-generated key as the tag ``mlflow.mlrelay.clientKey``; after an ambiguous failure
it searches for that key before creating again. :meth:`Client.create_experiment`
does the same with the experiment's name.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ._config import NOT_GIVEN, NotGiven, Settings, resolve
from ._credentials import build_auth, keyring_lookup
from ._errors import (
    APIError,
    ConfigurationError,
    NotFoundError,
    ResourceAlreadyExistsError,
    ValidationError,
)
from ._logged_model_api import LoggedModelReads
from ._logged_models import LoggedModelMethods
from ._protocol import messages as m
from ._protocol.batches import KIND_METRIC, KIND_PARAM, KIND_TAG, Entry, split_batch
from ._protocol.entities import (
    CLIENT_KEY_TAG,
    CLIENT_KEY_TAGS,
    DatasetInput,
    Experiment,
    ExperimentTag,
    FileInfo,
    Metric,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
)
from ._registry import RegistryMethods
from ._stores import Stores

if TYPE_CHECKING:
    from ._capabilities import Capabilities
    from ._stores import ArtifactStore
from ._retry import RetryPolicy, call_exactly_once
from ._transport import API_PREFIX, USER_AGENT, Transport, build_ssl_context
from ._validation import (
    unique_params,
    validate_experiment_name,
    validate_experiment_tag_value,
    validate_key,
    validate_metric_value,
    validate_param_value,
    validate_step,
    validate_tag_value,
    validate_text,
    validate_timestamp,
)

__all__ = ["CLIENT_KEY_TAG", "Client"]


_E = m.ENDPOINTS
_LOG_BATCH = API_PREFIX + "runs/log-batch"
_JSON_HEADERS = {"Content-Type": "application/json"}
T = TypeVar("T")


def now_ms() -> int:
    """The current time in Unix epoch milliseconds."""
    return int(time.time() * 1000)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _run_tags(tags: Mapping[str, Any] | Iterable[RunTag] | None) -> list[RunTag]:
    if tags is None:
        return []
    items = tags.items() if isinstance(tags, Mapping) else ((t.key, t.value) for t in tags)
    return [
        RunTag(key=validate_key(k, field="tag key"), value=validate_tag_value(k, v))
        for k, v in items
    ]


def _http_client(settings: Settings) -> httpx.Client:
    """The connection pool a Client builds for itself from its settings."""
    return httpx.Client(
        auth=build_auth(settings),
        verify=build_ssl_context(
            insecure=settings.insecure_tls,
            ca_path=settings.server_cert_path,
            client_cert_path=settings.client_cert_path,
        ),
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
        trust_env=True,
    )


class Client(RegistryMethods, LoggedModelMethods, LoggedModelReads):
    """A typed, synchronous client for an MLflow-compatible tracking server.

    Settings are resolved once, here, in this order (the first that has a value wins):

    1. arguments to this constructor;
    2. the process environment (``MLFLOW_TRACKING_URI``, ``MLFLOW_TRACKING_USERNAME`` /
       ``MLFLOW_TRACKING_PASSWORD`` for Basic auth, ``MLFLOW_TRACKING_TOKEN`` for Bearer,
       ``MLFLOW_HTTP_REQUEST_TIMEOUT``, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``,
       ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH``,
       ``MLFLOW_TRACKING_CLIENT_CERT_PATH``, and ``MLRELAY_*``);
    3. a ``.env`` file in the working directory (read without touching ``os.environ``;
       ``PYTHON_DOTENV_DISABLED=1`` turns this off);
    4. the OS keyring, for credentials stored by ``mlrelay login``;
    5. defaults.

    Passing any credential explicitly means no other source is asked for credentials.
    Basic auth wins over a token when both are configured, as in MLflow.
    ``HTTPS_PROXY``, ``NO_PROXY`` and ``SSL_CERT_FILE`` are honoured through httpx.
    TLS certificates are verified unless ``insecure_tls`` is set.

    Args:
        tracking_uri: the server, ``http(s)://host[:port][/prefix]``.
        username: Basic-auth user name.
        password: Basic-auth password (or token, for DagsHub).
        token: Bearer token.
        timeout: seconds for one HTTP request (connect, read, write).
        max_retries: retries after the first attempt of one call.
        retry_budget: total seconds one call may spend, waits included.
        insecure_tls: turn TLS verification off.
        server_cert_path: a CA bundle to verify the server with.
        client_cert_path: a client certificate (PEM with key) for mutual TLS.
        http_client: an ``httpx.Client`` to send through instead of building one; the
            caller configures and closes it.
        retry_policy: a full retry policy, overriding ``max_retries`` / ``retry_budget``.

    Raises:
        ConfigurationError: a setting is invalid, or no tracking URI is configured.

    Example::

        with mlrelay.Client(tracking_uri="http://127.0.0.1:5000") as client:
            exp_id = client.create_experiment("demo")
            run = client.create_run(exp_id, run_name="first")
            client.log_metric(run.info.run_id, "loss", 0.25, step=1)
            client.set_terminated(run.info.run_id)
    """

    def __init__(
        self,
        tracking_uri: str | NotGiven = NOT_GIVEN,
        *,
        username: str | NotGiven = NOT_GIVEN,
        password: str | NotGiven = NOT_GIVEN,
        token: str | NotGiven = NOT_GIVEN,
        timeout: float | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_budget: float | NotGiven = NOT_GIVEN,
        insecure_tls: bool | NotGiven = NOT_GIVEN,
        server_cert_path: str | NotGiven = NOT_GIVEN,
        client_cert_path: str | NotGiven = NOT_GIVEN,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        explicit = {
            "tracking_uri": tracking_uri,
            "username": username,
            "password": password,
            "token": token,
            "timeout": timeout,
            "max_retries": max_retries,
            "retry_budget": retry_budget,
            "insecure_tls": insecure_tls,
            "server_cert_path": server_cert_path,
            "client_cert_path": client_cert_path,
        }
        settings = resolve(
            {k: v for k, v in explicit.items() if v is not NOT_GIVEN},
            keyring_lookup=keyring_lookup,
        )
        if not settings.tracking_uri:
            raise ConfigurationError(
                "no tracking URI: pass tracking_uri=..., set MLFLOW_TRACKING_URI, or call "
                "mlrelay.init(owner, repo) for DagsHub"
            )
        self._settings = settings
        policy = retry_policy or RetryPolicy(
            max_retries=settings.max_retries,
            budget=settings.retry_budget,
            max_wait=settings.retry_max_wait,
        )
        self._owns_http = http_client is None
        if http_client is None:
            http_client = _http_client(settings)
        self._http = http_client
        self._artifact_uris: dict[str, str] = {}
        self._stores = Stores(settings)  # direct artifact stores' connections (s3://)
        self._owns_stores = True
        self._transport = Transport(
            base_url=settings.tracking_uri, http_client=http_client, retry=policy
        )

    # --- lifecycle and options --------------------------------------------------------

    @property
    def tracking_uri(self) -> str:
        """The server this client talks to (without credentials)."""
        return self._transport.base_url

    @property
    def settings(self) -> Settings:
        """The resolved settings, with the source of each (secrets masked)."""
        return self._settings

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy calls use."""
        return self._transport.retry

    def with_options(
        self,
        *,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_budget: float | NotGiven = NOT_GIVEN,
        retry_policy: RetryPolicy | None = None,
        timeout: float | NotGiven = NOT_GIVEN,
    ) -> Client:
        """A copy with other retry options or request timeout that shares the connection pool.

        >>> quick = client.with_options(max_retries=0)  # doctest: +SKIP
        """
        policy = retry_policy or self.retry_policy
        if not isinstance(max_retries, NotGiven):
            policy = policy.with_changes(max_retries=max_retries)
        if not isinstance(retry_budget, NotGiven):
            policy = policy.with_changes(budget=retry_budget)
        clone = copy.copy(self)  # shares the settings, the pool and the artifact-URI cache
        clone._owns_http = False  # noqa: SLF001  (same class) the original closes the pool
        clone._owns_stores = False  # noqa: SLF001  (same class) and the stores' connections
        clone._transport = self._transport.with_options(  # noqa: SLF001  (same class)
            retry=policy, timeout=timeout
        )
        return clone

    def server_version(self) -> str | None:
        """The server's version as ``GET /version`` gives it, or None when it does not say.

        One request, with this client's retries; never raises for an HTTP failure.
        """
        try:
            response = self._transport.send("GET", "/version", idempotent=True)
        except APIError:
            return None
        return response.text.strip()[:40] or None

    def close(self) -> None:
        """Close the connection pool, if this client built it, and the connections to
        direct artifact stores (not those of the client a ``with_options()`` copy is of)."""
        if self._owns_http:
            self._http.close()
        if self._owns_stores:
            self._stores.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(tracking_uri={self.tracking_uri!r})"

    # --- helpers ----------------------------------------------------------------------

    def _exactly_once(self, send: Callable[[], T], find: Callable[[], T | None]) -> T:
        """Send a non-idempotent request; after an ambiguous failure, look before resending."""
        return call_exactly_once(send, find, policy=self.retry_policy, what="create")

    @staticmethod
    def _paginate(
        fetch: Callable[[str | None], tuple[list[T], str | None]], limit: int | None
    ) -> Iterator[T]:
        token: str | None = None
        count = 0
        while True:
            items, token = fetch(token)
            for item in items:
                if limit is not None and count >= limit:
                    return
                yield item
                count += 1
            if not token:
                return

    # --- experiments --------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Create an experiment and return its id.

        A response lost in transit does not turn into an error on the retry: the
        experiment is looked up by name instead.

        Raises:
            ValidationError: the name or a tag is invalid.
            ResourceAlreadyExistsError: an experiment with that name exists (deleted
                ones included, as MLflow keeps their names).
        """
        validate_experiment_name(name)
        tag_list = [
            ExperimentTag(
                key=validate_key(k, field="experiment tag key"),
                value=validate_experiment_tag_value(k, v),
            )
            for k, v in (tags or {}).items()
        ]
        request = m.CreateExperiment(
            name=name, artifact_location=artifact_location, tags=tag_list or None
        )

        def find() -> str | None:
            found = self.get_experiment_by_name(name)
            return found.experiment_id if found else None

        return self._exactly_once(
            lambda: self._transport.call(_E.create_experiment, request).experiment_id, find
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return an experiment by id (deleted ones too).

        Raises:
            NotFoundError: there is no such experiment.
        """
        request = m.GetExperiment(experiment_id=str(experiment_id))
        return self._transport.call(_E.get_experiment, request).experiment

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None when there is none.

        Raises:
            NotFoundError: the endpoint itself is missing (a wrong tracking URI), as
                opposed to the experiment.
        """
        try:
            return self._transport.call(
                _E.get_experiment_by_name, m.GetExperimentByName(experiment_name=name)
            ).experiment
        except NotFoundError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def search_experiments(
        self,
        filter_string: str | None = None,
        *,
        view_type: ViewType = "ACTIVE_ONLY",
        order_by: Sequence[str] | None = None,
        max_results: int | None = None,
        page_size: int = 1000,
    ) -> Iterator[Experiment]:
        """Iterate over matching experiments, fetching pages as needed.

        Args:
            filter_string: e.g. ``"name LIKE 'probe%'"`` or ``"tags.team = 'a'"``.
            view_type: ``ACTIVE_ONLY``, ``DELETED_ONLY`` or ``ALL``.
            order_by: e.g. ``["name ASC"]``.
            max_results: stop after this many (all when None).
            page_size: experiments per request (1..50000).
        """

        def fetch(token: str | None) -> tuple[list[Experiment], str | None]:
            return self.search_experiments_page(
                filter_string,
                view_type=view_type,
                order_by=order_by,
                max_results=page_size,
                page_token=token,
            )

        return self._paginate(fetch, max_results)

    def search_experiments_page(
        self,
        filter_string: str | None = None,
        *,
        view_type: ViewType = "ACTIVE_ONLY",
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> tuple[list[Experiment], str | None]:
        """One page of :meth:`search_experiments`: the experiments and the next page's token
        (None after the last page)."""
        resp = self._transport.call(
            _E.search_experiments,
            m.SearchExperiments(
                max_results=max_results,
                filter=filter_string,
                order_by=list(order_by) if order_by else None,
                view_type=view_type,
                page_token=page_token,
            ),
        )
        return resp.experiments, resp.next_page_token or None

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        validate_experiment_name(new_name)
        self._transport.call(
            _E.update_experiment,
            m.UpdateExperiment(experiment_id=str(experiment_id), new_name=new_name),
        )

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment (MLflow answers 404 if it is already deleted)."""
        self._transport.call(
            _E.delete_experiment, m.ExperimentIdRequest(experiment_id=str(experiment_id))
        )

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a soft-deleted experiment (MLflow answers 404 if it is active)."""
        self._transport.call(
            _E.restore_experiment, m.ExperimentIdRequest(experiment_id=str(experiment_id))
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment (values up to 20000 characters)."""
        validate_key(key, field="experiment tag key")
        self._transport.call(
            _E.set_experiment_tag,
            m.SetExperimentTag(
                experiment_id=str(experiment_id),
                key=key,
                value=validate_experiment_tag_value(key, value),
            ),
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Delete a tag from an experiment (MLflow answers 404 if it is absent)."""
        self._transport.call(
            _E.delete_experiment_tag,
            m.DeleteExperimentTag(experiment_id=str(experiment_id), key=key),
        )

    # --- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None = None,
        tags: Mapping[str, Any] | Iterable[RunTag] | None = None,
        run_name: str | None = None,
        user_id: str | None = None,
        client_key: str | None = None,
    ) -> Run:
        """Create a run, exactly once even when a response is lost.

        Args:
            experiment_id: the experiment to create it in.
            start_time: epoch milliseconds; now when not given (MLflow stores 0 otherwise).
            tags: run tags.
            run_name: the run's name; the server picks one when not given.
            user_id: the deprecated ``user_id`` field (the UI reads ``mlflow.user``).
            client_key: the idempotency key sent as the ``mlflow.mlrelay.clientKey`` tag; a
                fresh one when not given. Reuse a key to make a later retry find the
                same run (``mlrelay sync`` does).

        Raises:
            ValidationError: a tag is invalid.
            NotFoundError: no such experiment.
            BadRequestError: the experiment is deleted.
        """
        key = client_key or uuid.uuid4().hex
        tag_list = [t for t in _run_tags(tags) if t.key not in CLIENT_KEY_TAGS]
        tag_list.append(RunTag(key=CLIENT_KEY_TAG, value=key))
        request = m.CreateRun(
            experiment_id=str(experiment_id),
            start_time=now_ms()
            if start_time is None
            else validate_timestamp("start_time", start_time),
            user_id=user_id,
            run_name=None
            if run_name is None
            else validate_text(run_name, field="run name", key=None),
            tags=tag_list,
        )
        return self._exactly_once(
            lambda: self._transport.call(_E.create_run, request).run,
            lambda: self.find_run_by_client_key(str(experiment_id), key),
        )

    def find_run_by_client_key(self, experiment_id: str, client_key: str) -> Run | None:
        """Return the run created with ``client_key`` in this experiment, if any (under the
        key's tag, or the name it had before mlrelay 0.2)."""
        for tag in CLIENT_KEY_TAGS:
            runs = self.search_runs(
                [experiment_id],
                f"tags.`{tag}` = {_quote(client_key)}",
                run_view_type="ALL",
                max_results=1,
            )
            found = next(iter(runs), None)
            if found is not None:
                return found
        return None

    def get_run(self, run_id: str) -> Run:
        """Return a run with its latest metrics, params, tags and inputs.

        Raises:
            NotFoundError: there is no such run.
        """
        return self._transport.call(_E.get_run, m.GetRun(run_id=run_id)).run

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time or name; fields left None are unchanged.

        Raises:
            ValidationError: the end time is not an int64 timestamp, or the name is not
                valid Unicode.
        """
        if end_time is not None:
            end_time = validate_timestamp("end_time", end_time)
        if name is not None:
            name = validate_text(name, field="run name", key=None)
        return self._transport.call(
            _E.update_run,
            m.UpdateRun(run_id=run_id, status=status, end_time=end_time, run_name=name),
        ).run_info

    def set_terminated(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None
    ) -> None:
        """End a run: set its status (FINISHED, FAILED or KILLED) and end time (now)."""
        self.update_run(run_id, status=status, end_time=now_ms() if end_time is None else end_time)

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self._transport.call(_E.delete_run, m.RunIdRequest(run_id=run_id))

    def restore_run(self, run_id: str) -> None:
        """Restore a soft-deleted run."""
        self._transport.call(_E.restore_run, m.RunIdRequest(run_id=run_id))

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        *,
        run_view_type: ViewType = "ACTIVE_ONLY",
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[Run]:
        """Iterate over matching runs, fetching pages as needed.

        Args:
            experiment_ids: the experiments to search (MLflow returns nothing for none).
            filter_string: e.g. ``"metrics.acc > 0.9 AND params.lr = '0.1'"``.
            run_view_type: ``ACTIVE_ONLY``, ``DELETED_ONLY`` or ``ALL``.
            max_results: stop after this many (all when None).
            order_by: e.g. ``["metrics.acc DESC"]``.
            page_size: runs per request (1..50000).
        """

        def fetch(token: str | None) -> tuple[list[Run], str | None]:
            return self.search_runs_page(
                experiment_ids,
                filter_string,
                run_view_type=run_view_type,
                max_results=page_size if max_results is None else min(page_size, max_results),
                order_by=order_by,
                page_token=token,
            )

        return self._paginate(fetch, max_results)

    def search_runs_page(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        *,
        run_view_type: ViewType = "ACTIVE_ONLY",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """One page of :meth:`search_runs`: the runs and the next page's token (None after
        the last page)."""
        resp = self._transport.call(
            _E.search_runs,
            m.SearchRuns(
                experiment_ids=[str(e) for e in experiment_ids],
                filter=filter_string or None,
                run_view_type=run_view_type,
                max_results=max_results,
                order_by=list(order_by) if order_by else None,
                page_token=page_token,
            ),
        )
        return resp.runs, resp.next_page_token or None

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
    ) -> None:
        """Log one metric point (NaN and infinities allowed).

        Raises:
            ValidationError: bad key, value, timestamp or step.
        """
        validate_key(key, field="metric key")
        self._transport.call(
            _E.log_metric,
            m.LogMetric(
                run_id=run_id,
                key=key,
                value=validate_metric_value(key, value),
                timestamp=now_ms() if timestamp is None else validate_timestamp(key, timestamp),
                step=0 if step is None else validate_step(key, step),
            ),
        )

    def log_param(self, run_id: str, key: str, value: Any) -> str:
        """Log a param; returns the value as stored (a string).

        Raises:
            ValidationError: bad key, or a value over 6000 characters.
            BadRequestError: the param was already logged with another value.
        """
        validate_key(key, field="param key")
        text = validate_param_value(key, value)
        self._transport.call(_E.log_param, m.LogParam(run_id=run_id, key=key, value=text))
        return text

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set a run tag (overwrites; values up to 8000 characters)."""
        validate_key(key, field="tag key")
        self._transport.call(
            _E.set_tag, m.SetTag(run_id=run_id, key=key, value=validate_tag_value(key, value))
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        """Delete a run tag (MLflow answers 404 if it is absent)."""
        self._transport.call(_E.delete_tag, m.DeleteTag(run_id=run_id, key=key))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Log any number of metrics, params and tags, split into requests within MLflow's limits.

        Everything is validated before the first request is sent, so one bad entry
        rejects the call without sending a part of it. Requests go out in order.

        Raises:
            ValidationError: an entry is invalid (names the key and the limit).
        """
        checked_metrics = [
            Entry(
                i,
                KIND_METRIC,
                validate_key(x.key, field="metric key"),
                validate_metric_value(x.key, x.value),
                validate_timestamp(x.key, x.timestamp),
                validate_step(x.key, x.step),
            )
            for i, x in enumerate(metrics)
        ]
        checked_params = unique_params(
            [
                (validate_key(p.key, field="param key"), validate_param_value(p.key, p.value))
                for p in params
            ]
        )
        for batch in split_batch(
            checked_metrics,
            [Entry(0, KIND_PARAM, k, v, None, None) for k, v in checked_params],
            [Entry(0, KIND_TAG, t.key, t.value, None, None) for t in _run_tags(tags)],
        ):
            self.send_log_batch(batch.body(run_id))

    def send_log_batch(self, body: bytes) -> None:
        """Send one log-batch request body as is: no validation, no splitting.

        For callers that validated every entry already and packed it within MLflow's
        limits with :func:`mlrelay._protocol.batches.pack_batch` (the background sender
        and ``mlrelay sync`` do); others want :meth:`log_batch`. Idempotent: MLflow
        deduplicates a resent batch, since timestamps are fixed when points are logged.
        """
        self._transport.send(
            "POST", _LOG_BATCH, content=body, headers=_JSON_HEADERS, idempotent=True
        )

    def get_or_create_experiment(self, name: str) -> str:
        """The id of experiment ``name``, created if missing.

        Safe when another process creates it at the same moment: a create that finds the
        name taken looks it up again.
        """
        found = self.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return self.create_experiment(name)
        except ResourceAlreadyExistsError:
            found = self.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record datasets a run used (MLflow ignores a dataset logged twice).

        Raises:
            ValidationError: a dataset's field or tag holds text that is not valid
                Unicode (a lone surrogate), naming the field and the dataset.
        """
        for given in datasets:
            name = given.dataset.name
            texts = [*given.dataset.model_dump().items(), *((t.key, t.value) for t in given.tags)]
            for field, value in texts:
                if isinstance(value, str):
                    validate_text(value, field=f"dataset {field}", key=name)
        self._transport.call(_E.log_inputs, m.LogInputs(run_id=run_id, datasets=list(datasets)))

    def capabilities(self) -> Capabilities:
        """What this server offers (version, logged models, server-info, multipart uploads,
        registry), probed on first use and cached for the process."""
        from ._capabilities import capabilities_of

        return capabilities_of(self._transport)

    # --- artifacts ----------------------------------------------------------------------

    def _artifact_uri(self, run_id: str) -> str:
        """The run's artifact root, fetched once per run and remembered (as MLflow does)."""
        cache = self._artifact_uris
        uri = cache.get(run_id)
        if uri is None:
            uri = self.get_run(run_id).info.artifact_uri or ""
            if len(cache) >= 1024:  # bounded: forget the oldest
                cache.pop(next(iter(cache)))
            cache[run_id] = uri
        return uri

    def _artifact_store(self, artifact_uri: str) -> ArtifactStore:
        """The store of an artifact location: the server's proxy for ``mlflow-artifacts:``,
        boto3 for ``s3://`` (see :mod:`mlrelay._stores`).

        Raises:
            ArtifactsNotProxiedError: no store mlrelay has serves the location.
            MissingExtraError: the store's optional library is not installed.
        """
        return self._stores.open(
            artifact_uri, self._transport, lambda: self.capabilities().multipart_uploads
        )

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """Upload a file to the run's artifacts (under ``artifact_path``), streamed from disk:
        through the server's artifact proxy, or straight to the bucket for a run whose
        artifacts are in ``s3://`` (as MLflow's client does).

        Safe to repeat: the same file lands at the same place, whole. Large files go in
        parts (proxy: when the server offers multipart uploads; s3: from
        ``MLRELAY_S3_MULTIPART_THRESHOLD``); a connection lost mid-file sends that file (or
        part) again.

        Raises:
            ValidationError: the path is not a file, or ``artifact_path`` leaves the run's
                artifacts.
            ArtifactsNotProxiedError: the run's artifacts are neither served by the tracking
                server nor in ``s3://`` (names the location and the server option to set).
            MissingExtraError: they are in ``s3://`` and boto3 is not installed
                (``pip install 'mlrelay[s3]'``).
        """
        path = Path(local_path)
        if not path.is_file():
            raise ValidationError(f"{local_path!r} is not an existing file", field="local_path")
        self._artifact_store(self._artifact_uri(run_id)).upload_file(path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload every file below a directory to the run's artifacts, keeping the tree;
        several files at a time, each retried on its own.

        Raises:
            ValidationError: the path is not a directory.
            ArtifactsNotProxiedError: the run's artifacts are neither served by the tracking
                server nor in ``s3://``.
            MissingExtraError: they are in ``s3://`` and boto3 is not installed.
        """
        from ._stores import upload_dir

        path = Path(local_dir)
        if not path.is_dir():
            raise ValidationError(f"{local_dir!r} is not an existing directory", field="local_dir")
        upload_dir(self._artifact_store(self._artifact_uri(run_id)), path, artifact_path)

    def _render_and_upload(
        self, run_id: str, artifact_file: str, render: Callable[[Path], None]
    ) -> None:
        from ._artifacts import rendered

        rendered(
            artifact_file, render, lambda path, folder: self.log_artifact(run_id, str(path), folder)
        )

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Upload a string as a text artifact (e.g. ``"notes/summary.txt"``)."""
        from ._artifacts import write_text

        self._render_and_upload(run_id, artifact_file, lambda t: write_text(text, t))

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Upload a dictionary as JSON or YAML (by the file's extension)."""
        from ._artifacts import write_dict

        self._render_and_upload(run_id, artifact_file, lambda t: write_dict(dictionary, t))

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Upload a matplotlib or plotly figure."""
        from ._artifacts import write_figure

        self._render_and_upload(run_id, artifact_file, lambda t: write_figure(figure, t))

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Upload a numpy array or PIL image as an image."""
        from ._artifacts import write_image

        self._render_and_upload(run_id, artifact_file, lambda t: write_image(image, t))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly below ``path`` in the run's artifacts, and,
        on MLflow 3, in the run's logged model named by the path's first part (as MLflow 3
        lists ``runs:/<run_id>/<name>``: a model's files are stored with the model)."""
        found = self.list_run_artifacts(run_id, path)
        name, _, rest = (path or "").strip("/").partition("/")
        logged = self.run_logged_model(run_id, name) if name else None
        if logged is not None:
            found += [
                FileInfo(path=f"{name}/{f.path}", is_dir=f.is_dir, file_size=f.file_size)
                for f in self.list_artifacts_at(str(logged.artifact_uri), rest or None)
            ]
        return found

    def list_run_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly below ``path`` in the run's own artifacts:
        the server lists them, or mlrelay itself for a run whose artifacts are in ``s3://``
        (the server may have no access to that bucket)."""
        uri = self._artifact_uri(run_id)
        if self._stores.is_direct(uri):
            return self.list_artifacts_at(uri, path)
        found: list[FileInfo] = []
        token = None
        while True:
            response = self._transport.send(
                "GET",
                API_PREFIX + "artifacts/list",
                params={
                    k: v
                    for k, v in (("run_id", run_id), ("path", path), ("page_token", token))
                    if v is not None
                },
                idempotent=True,
            ).json()
            found += [FileInfo.model_validate(f) for f in response.get("files", [])]
            token = response.get("next_page_token")
            if not token:
                return found

    def list_artifacts_at(self, artifact_uri: str, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly below ``path`` in an artifact location such as
        ``mlflow-artifacts:/1/models/m-.../artifacts`` or ``s3://bucket/1/<run>/artifacts``
        (paths relative to that location).

        Raises:
            ArtifactsNotProxiedError: no store mlrelay has serves the location.
            MissingExtraError: the store's optional library is not installed.
        """
        from ._stores import relative

        return self._artifact_store(artifact_uri).list_dir(relative(path or ""))

    def download_artifacts_at(
        self, artifact_uri: str, path: str = "", dst_path: str | None = None
    ) -> str:
        """Download ``path`` (a file or directory; ``""`` for everything) below an artifact
        location such as ``mlflow-artifacts:/...`` or ``s3://...`` to ``<dst_path>/<path>``;
        returns that local path (see :meth:`download_artifacts`).

        Raises:
            NotFoundError: nothing exists at ``path``.
            ArtifactsNotProxiedError: no store mlrelay has serves the location.
            MissingExtraError: the store's optional library is not installed.
        """
        from ._stores import download

        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="mlrelay-"))
        return str(download(self._artifact_store(artifact_uri), path, dst))

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Download an artifact file or directory to ``<dst_path>/<path>``, as MLflow does;
        returns that local path.

        Files stream to disk in constant memory (a temporary name, renamed when complete).

        Args:
            path: the file or directory below the run's root (``""``: everything).
            dst_path: a directory to download into, created if missing (a new temporary
                one if None).

        Raises:
            NotFoundError: nothing exists at ``path``.
            ArtifactsNotProxiedError: the run's artifacts are neither served by the tracking
                server nor in ``s3://``.
            MissingExtraError: they are in ``s3://`` and boto3 is not installed.
        """
        name, _, rest = path.strip("/").partition("/")
        logged = self.run_logged_model(run_id, name) if name else None
        if logged is None:
            return self.download_artifacts_at(self._artifact_uri(run_id), path, dst_path)
        dst = dst_path or tempfile.mkdtemp(prefix="mlrelay-")
        with contextlib.suppress(NotFoundError):  # the run's own files there, if any
            self.download_artifacts_at(self._artifact_uri(run_id), path, dst)
        found = self.download_artifacts_at(str(logged.artifact_uri), rest, f"{dst}/{name}")
        return found

    def get_metric_history(self, run_id: str, key: str, *, page_size: int = 25000) -> list[Metric]:
        """Every point of one metric, all pages fetched (empty for an unknown run or key)."""

        def fetch(token: str | None) -> tuple[list[Metric], str | None]:
            resp = self._transport.call(
                _E.get_metric_history,
                m.GetMetricHistory(
                    run_id=run_id, metric_key=key, max_results=page_size, page_token=token
                ),
            )
            return resp.metrics, resp.next_page_token

        return list(self._paginate(fetch, None))
