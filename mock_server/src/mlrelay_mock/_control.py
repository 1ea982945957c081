"""The HTTP control endpoints under ``/_mock``: faults, outages, the journal, resets.

They are never journaled, faulted or authenticated, so a test (or a process in another
language) can always steer the server::

    POST   /_mock/faults      {"action": "status", "path": "*/log-batch", "status": 503, "times": 3}
    GET    /_mock/faults      -> {"rules": [...]}
    DELETE /_mock/faults      (all)  |  DELETE /_mock/faults/<id>
    POST   /_mock/outage      {"seconds": 10} or {"requests": 5}, optional "action", "status"
    GET    /_mock/requests    -> {"requests": [...]} (optional ?since=<seq>)
    DELETE /_mock/requests
    POST   /_mock/reset       faults and journal; {"state": true} also wipes the stored data
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlrelay_mock._api import AppState, error_response, json_response, parse_json_body
from mlrelay_mock._errors import MlflowError, invalid
from mlrelay_mock._faults import FaultController
from mlrelay_mock._journal import Journal

__all__ = ["control_routes"]


async def _body(request: Request) -> dict[str, Any]:
    return parse_json_body(await request.body())


def control_routes(*, state: AppState, faults: FaultController, journal: Journal) -> list[Route]:
    """The ``/_mock`` routes: they steer ``faults``, read and clear ``journal``, and reset
    ``state`` (the store and the artifacts). They know nothing of the app serving them."""

    async def list_faults(_: Request) -> Response:
        return json_response({"rules": [r.to_json() for r in faults.rules]})

    async def add_fault(request: Request) -> Response:
        try:
            rule = faults.add_from_json(await _body(request))
        except MlflowError as error:
            return error_response(error)
        except (TypeError, ValueError) as exc:
            return error_response(invalid(str(exc)))
        return json_response({"rule": rule.to_json()})

    async def clear_faults(_: Request) -> Response:
        faults.clear()
        return json_response({})

    async def remove_fault(request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        if not faults.remove(rule_id):
            return error_response(MlflowError("RESOURCE_DOES_NOT_EXIST", f"No rule {rule_id}"))
        return json_response({})

    async def outage(request: Request) -> Response:
        try:
            data = await _body(request)
            rule = faults.outage(
                seconds=data.get("seconds"),
                requests=data.get("requests"),
                action=data.get("action", "status"),
                status=data.get("status", 503),
            )
        except MlflowError as error:
            return error_response(error)
        except (TypeError, ValueError) as exc:
            return error_response(invalid(str(exc)))
        return json_response({"rule": rule.to_json()})

    async def list_requests(request: Request) -> Response:
        since = request.query_params.get("since", "0")
        if not since.isdigit():
            return error_response(invalid("'since' must be a non-negative integer"))
        entries = [e.to_json() for e in journal if e.seq > int(since)]
        return json_response({"requests": entries})

    async def clear_requests(_: Request) -> Response:
        journal.clear()
        return json_response({})

    async def reset(request: Request) -> Response:
        try:
            data = await _body(request)
        except MlflowError as error:
            return error_response(error)
        faults.clear()
        journal.clear()
        if data.get("state"):
            state.reset()
        return json_response({})

    return [
        Route("/_mock/faults", list_faults, methods=["GET"]),
        Route("/_mock/faults", add_fault, methods=["POST"]),
        Route("/_mock/faults", clear_faults, methods=["DELETE"]),
        Route("/_mock/faults/{rule_id:int}", remove_fault, methods=["DELETE"]),
        Route("/_mock/outage", outage, methods=["POST"]),
        Route("/_mock/requests", list_requests, methods=["GET"]),
        Route("/_mock/requests", clear_requests, methods=["DELETE"]),
        Route("/_mock/reset", reset, methods=["POST"]),
    ]
