"""An API-Gateway-style HTTP front for the admin API in local mode (REST API, Lambda proxy integration).

Each HTTP request on 127.0.0.1 becomes a REST proxy event (``resource``, ``path``,
``pathParameters`` matched against the route templates, query parameters, headers, body and a
``requestContext`` with ``requestId`` and ``stage``). The real REQUEST authorizer runs first, as in
API Gateway: it raising ``Unauthorized`` answers 401 ``{"message": "Unauthorized"}``, a policy that
does not allow the method answers 403, and otherwise its context lands in
``requestContext.authorizer`` (values as strings, like API Gateway). Then the real handler runs and
its response is written back as it is. A path that matches no route answers 403
``{"message": "Missing Authentication Token"}``, API Gateway's answer for an unknown resource.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lisa_contracts.names import ADMIN_ROUTES
from lisa_domain.cors import cors_headers, request_origin
from local_mode.http_thread import BackgroundHttpServer

logger = logging.getLogger(__name__)

LambdaHandler = Callable[[dict[str, Any], Any], Any]

ACCOUNT_ID = "123456789012"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda context object that handlers and Powertools read."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    region: str = "us-east-1"
    timeout_ms: int = 29_000
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


@dataclass(frozen=True)
class Route:
    """One resource template such as ``/models/{modelId}``."""

    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]

    @classmethod
    def of(cls, template: str) -> Route:
        names: list[str] = []
        parts = []
        for segment in template.strip("/").split("/"):
            match = re.fullmatch(r"\{(\w+)\}", segment)
            if match:
                names.append(match.group(1))
                parts.append("([^/]+)")
            else:
                parts.append(re.escape(segment))
        return cls(template, re.compile("^/" + "/".join(parts) + "/?$"), tuple(names))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in zip(self.names, found.groups(), strict=True)}


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_response(status: int, payload: Any, request_id: str) -> Response:
    return Response(
        status,
        [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
        json.dumps(payload).encode(),
    )


def _arn_pattern_matches(pattern: str, arn: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_decision(policy: Mapping[str, Any], method_arn: str) -> str:
    """``"Allow"``, ``"Deny"`` (explicit) or ``"None"`` for an IAM policy and a method ARN."""
    allowed = False
    for statement in _as_list(policy.get("Statement", [])):
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        if not any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
            continue
        resources = [str(r) for r in _as_list(statement.get("Resource", []))]
        if not any(_arn_pattern_matches(r, method_arn) for r in resources):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        if statement.get("Effect") == "Allow":
            allowed = True
    return "Allow" if allowed else "None"


def _context_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ApiGatewayAdapter:
    """Turns HTTP requests into REST proxy events for ``handler``, behind ``authorizer``."""

    def __init__(
        self,
        handler: LambdaHandler,
        authorizer: LambdaHandler | None,
        *,
        routes: Iterable[str] = ADMIN_ROUTES,
        stage: str = "local",
        api_id: str = "lisalocal",
        region: str = "us-east-1",
        function_name: str = "lisa-admin-api",
        authorizer_name: str = "lisa-authorizer",
        cors_origins: tuple[str, ...] = (),
    ) -> None:
        self.cors_origins = cors_origins
        self._handler = handler
        self._authorizer = authorizer
        self._routes = [Route.of(template) for template in routes]
        self.stage = stage
        self.api_id = api_id
        self.region = region
        self._function_name = function_name
        self._authorizer_name = authorizer_name

    def _match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes:
            params = route.match(path)
            if params is not None:
                return route, params
        return None

    def handle(
        self,
        method: str,
        raw_path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> Response:
        """The API's answer; like API Gateway with CORS configured, the gateway answers a preflight
        ``OPTIONS`` itself and adds the CORS headers to its own answers (401, 403), and the Lambda
        adds them to its responses (``admin_api.cors``)."""
        origin = request_origin(dict(headers))
        if method == "OPTIONS" and self._match(urlsplit(raw_path).path) is not None:
            cors = cors_headers(origin, self.cors_origins, preflight=True)
            return Response(HTTPStatus.NO_CONTENT, list(cors.items()), b"")
        response = self._handle(method, raw_path, headers, body, source_ip)
        if any(name.lower() == "access-control-allow-origin" for name, _ in response.headers):
            return response
        extra = cors_headers(origin, self.cors_origins)
        return Response(response.status, response.headers + list(extra.items()), response.body)

    def _handle(
        self,
        method: str,
        raw_path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> Response:
        request_id = str(uuid.uuid4())
        split = urlsplit(raw_path)
        path = unquote(split.path) or "/"
        matched = self._match(split.path)
        if matched is None:
            return _json_response(
                HTTPStatus.FORBIDDEN, {"message": "Missing Authentication Token"}, request_id
            )
        route, path_params = matched

        single_headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            single_headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        lowered = {k.lower(): v for k, v in single_headers.items()}
        method_arn = (
            f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{self.api_id}/{self.stage}/{method}"
            f"/{split.path.lstrip('/')}"
        )
        request_context: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": self.api_id,
            "resourceId": route.template,
            "resourcePath": route.template,
            "httpMethod": method,
            "path": f"/{self.stage}{path}",
            "stage": self.stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "domainName": lowered.get("host", "127.0.0.1"),
            "identity": {"sourceIp": source_ip, "userAgent": lowered.get("user-agent", "")},
        }
        common: dict[str, Any] = {
            "resource": route.template,
            "path": path,
            "httpMethod": method,
            "headers": single_headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
        }

        if self._authorizer is not None:
            denied = self._authorize(common, request_context, method_arn, request_id)
            if denied is not None:
                return denied

        text: str | None
        encoded = False
        if not body:
            text = None
        else:
            try:
                text = body.decode()
            except UnicodeDecodeError:
                text, encoded = base64.b64encode(body).decode(), True
        event = common | {"requestContext": request_context, "body": text, "isBase64Encoded": encoded}
        try:
            result = self._handler(event, LambdaContext(self._function_name, region=self.region))
        except Exception:
            logger.exception("the admin API handler raised")
            return _json_response(HTTPStatus.BAD_GATEWAY, {"message": "Internal server error"}, request_id)
        return self._to_response(result, request_id)

    def _authorize(
        self,
        common: dict[str, Any],
        request_context: dict[str, Any],
        method_arn: str,
        request_id: str,
    ) -> Response | None:
        """Run the authorizer; a response when the request must stop here, otherwise None."""
        assert self._authorizer is not None
        event = common | {
            "type": "REQUEST",
            "methodArn": method_arn,
            "requestContext": dict(request_context),
        }
        try:
            result = self._authorizer(event, LambdaContext(self._authorizer_name, region=self.region))
        except Exception as error:
            if str(error) == "Unauthorized":
                return _json_response(HTTPStatus.UNAUTHORIZED, {"message": "Unauthorized"}, request_id)
            logger.exception("the authorizer raised")
            return _json_response(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": None}, request_id)
        if not isinstance(result, Mapping) or not isinstance(result.get("policyDocument"), Mapping):
            logger.error("the authorizer returned no policy document")
            return _json_response(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": None}, request_id)
        decision = policy_decision(result["policyDocument"], method_arn)
        if decision == "Deny":
            return _json_response(
                HTTPStatus.FORBIDDEN,
                {"message": "User is not authorized to access this resource with an explicit deny"},
                request_id,
            )
        if decision != "Allow":
            return _json_response(
                HTTPStatus.FORBIDDEN,
                {"message": "User is not authorized to access this resource"},
                request_id,
            )
        context = {key: _context_value(value) for key, value in (result.get("context") or {}).items()}
        request_context["authorizer"] = {"principalId": str(result.get("principalId", "")), **context}
        return None

    @staticmethod
    def _to_response(result: Any, request_id: str) -> Response:
        if not isinstance(result, Mapping) or "statusCode" not in result:
            logger.error("the admin API handler returned a malformed proxy response")
            return _json_response(HTTPStatus.BAD_GATEWAY, {"message": "Internal server error"}, request_id)
        headers: list[tuple[str, str]] = []
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(value)) for value in _as_list(values))
        seen = {name.lower() for name, _ in headers}
        headers.extend(
            (name, str(value))
            for name, value in (result.get("headers") or {}).items()
            if name.lower() not in seen
        )
        headers.append(("x-amzn-RequestId", request_id))
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        return Response(int(result["statusCode"]), headers, body)


class _RequestHandler(BaseHTTPRequestHandler):
    adapter: ApiGatewayAdapter
    protocol_version = "HTTP/1.1"
    server_version = "lisa-local-apigw"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            response = _json_response(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"message": "Request too long"}, ""
            )
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            response = self.adapter.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("admin api: " + format, *args)


class AdminApiServer(BackgroundHttpServer):
    """The adapter served over HTTP on 127.0.0.1 in a background thread."""

    def __init__(self, adapter: ApiGatewayAdapter, host: str = "127.0.0.1", port: int = 0) -> None:
        handler_class = type("AdminRequestHandler", (_RequestHandler,), {"adapter": adapter})
        super().__init__(handler_class, host, port, "admin-api")
