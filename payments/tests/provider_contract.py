"""The providers' own descriptions, as checks the fakes run on every exchange.

Nothing here was written from our idea of the providers:
- PayPal: the official OpenAPI documents in ../shared/specs/paypal/ (request bodies,
  header parameters, response bodies per status code, webhook events and the resources
  they carry). A response property the document does not declare counts as an error
  too: a fake that invents a field lets our code depend on something PayPal never sends.
- Stripe, requests: the `stripe` SDK's generated `*CreateParams`/`*ListParams`/...
  TypedDicts (generated from Stripe's OpenAPI description of the API version the pinned
  SDK targets), applied at run time to the form the SDK sent: unknown parameters,
  missing required ones, values outside a Literal, non-integers where an int goes.
- Stripe, responses: ../shared/specs/stripe/fixtures3.json (one object of every resource
  as the current API returns it) for the set of fields each object has, and the SDK's
  resource classes for which of them may be null.

`FakeProvider` (fakes.py) calls these for every request; a request the provider would
refuse is refused the way it refuses it, and a response or event the provider would
never send is recorded in `fake.violations`, which the fixtures require to be empty.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SPECS_DIR = next((p for p in (Path(__file__).resolve().parents[2].parent / "shared" / "specs",
                              Path("/work/shared/specs")) if p.is_dir()), None)


def specs_dir() -> Path:
    if SPECS_DIR is None:
        import pytest

        pytest.skip("the providers' descriptions are not beside the project (../shared/specs, see its README)")
    return SPECS_DIR


# =========================================================================== PayPal

PAYPAL_FILES = ("checkout_orders_v2.json", "payments_payment_v2.json", "notifications_webhooks_v1.json",
                "customer_disputes_v1.json")


@cache
def _paypal_doc(name: str) -> dict:
    return json.loads((specs_dir() / "paypal" / name).read_text())


@dataclass(frozen=True)
class PayPalOperation:
    spec_file: str
    template: str
    method: str

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template} ({self.spec_file})"

    def op(self) -> dict:
        return _paypal_doc(self.spec_file)["paths"][self.template][self.method]


@cache
def _paypal_routes() -> list[tuple[re.Pattern, PayPalOperation]]:
    routes = []
    for name in PAYPAL_FILES:
        for template, ops in _paypal_doc(name)["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            for method in ops:
                if method in ("get", "post", "patch", "put", "delete"):
                    routes.append((pattern, PayPalOperation(name, template, method)))
    # The most specific template first: literal segments beat parameters.
    routes.sort(key=lambda r: (r[1].template.count("{"), -len(r[1].template)))
    return routes


def paypal_operation(method: str, path: str) -> PayPalOperation | None:
    for pattern, operation in _paypal_routes():
        if operation.method == method.lower() and pattern.match(path):
            return operation
    return None


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


@cache
def _validator(spec_file: str, pointer: str) -> jsonschema.Draft4Validator:
    doc = _paypal_doc(spec_file)
    return jsonschema.Draft4Validator({"$ref": "#" + pointer, "components": doc["components"]})


def _pointer_of(schema: dict) -> str | None:
    ref = schema.get("$ref", "")
    return ref[1:] if ref.startswith("#/") else None


def _schema_validator(spec_file: str, schema: dict) -> jsonschema.Draft4Validator:
    pointer = _pointer_of(schema)
    if pointer:
        return _validator(spec_file, pointer)
    doc = _paypal_doc(spec_file)
    return jsonschema.Draft4Validator({**schema, "components": doc["components"]})


def _errors(validator: jsonschema.Draft4Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))]


def undeclared(spec_file: str, schema: dict, instance: Any, where: str = "") -> list[str]:
    """Properties of `instance` its schema does not declare (through $ref and allOf)."""
    doc = _paypal_doc(spec_file)
    schema = _resolve(doc, schema)
    if isinstance(instance, list):
        items = schema.get("items")
        return [f for i, item in enumerate(instance) for f in
                (undeclared(spec_file, items, item, f"{where}/{i}") if items else [])]
    if not isinstance(instance, dict):
        return []
    properties: dict[str, dict] = {}
    open_ended = bool(schema.get("additionalProperties")) or "anyOf" in schema or "oneOf" in schema
    stack = [schema]
    while stack:
        node = _resolve(doc, stack.pop())
        properties.update(node.get("properties") or {})
        stack.extend(node.get("allOf") or [])
        open_ended = open_ended or bool(node.get("additionalProperties")) or "anyOf" in node or "oneOf" in node
    if not properties:
        return []
    found = []
    for key, value in instance.items():
        if key in properties:
            found += undeclared(spec_file, properties[key], value, f"{where}/{key}")
        elif not open_ended:
            found.append(f"{where}/{key}: not in PayPal's description")
    return found


# jsonschema's keyword → PayPal's issue name for it (the issues its 400 answers list).
PAYPAL_ISSUES = {
    "required": "MISSING_REQUIRED_PARAMETER", "pattern": "INVALID_PARAMETER_SYNTAX",
    "format": "INVALID_PARAMETER_SYNTAX", "type": "INVALID_PARAMETER_SYNTAX", "maxLength": "INVALID_STRING_LENGTH",
    "minLength": "INVALID_STRING_LENGTH", "minItems": "INVALID_ARRAY_MIN_ITEMS", "maxItems": "INVALID_ARRAY_MAX_ITEMS",
}


def _issue_descriptions(operation: PayPalOperation) -> dict[str, str]:
    """The fixed description PayPal's 400 answer gives each issue, from the document."""
    doc = _paypal_doc(operation.spec_file)
    schema = _response_schema(operation.op(), doc, 400) or {}
    found: dict[str, str] = {}
    stack = [schema]
    while stack:
        node = _resolve(doc, stack.pop())
        stack.extend(node.get("allOf") or [])
        items = ((node.get("properties") or {}).get("details") or {}).get("items") or {}
        for option in _resolve(doc, items).get("anyOf") or []:
            props = option.get("properties") or {}
            issue = (props.get("issue") or {}).get("enum") or [option.get("title")]
            description = (props.get("description") or {}).get("enum") or [""]
            if issue[0]:
                found[issue[0]] = description[0]
    return found


def paypal_request_issues(method: str, path: str, headers: Any, body: bytes) -> list[dict] | None:
    """PayPal's `details` (field, location, issue, description) for what its description
    refuses in a request; None: no described operation matches."""
    operation = paypal_operation(method, path)
    if operation is None:
        return None
    doc = _paypal_doc(operation.spec_file)
    op = operation.op()
    raw: list[tuple[str, str, jsonschema.ValidationError | None]] = []
    for parameter in op.get("parameters") or []:
        parameter = _resolve(doc, parameter)
        if parameter.get("in") != "header":
            continue
        value = headers.get(parameter["name"])
        if value is None:
            if parameter.get("required"):
                raw.append((parameter["name"], "header", None))
            continue
        validator = _schema_validator(operation.spec_file, parameter.get("schema") or {})
        raw += [(parameter["name"], "header", e) for e in validator.iter_errors(value)]
    content = (op.get("requestBody") or {}).get("content") or {}
    if "application/json" in content and (body.strip() or (op.get("requestBody") or {}).get("required")):
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            return [{"field": "/", "location": "body", "issue": "MALFORMED_REQUEST_JSON",
                     "description": "The request JSON is not well formed."}]
        validator = _schema_validator(operation.spec_file, content["application/json"]["schema"])
        raw += [("/" + "/".join(map(str, e.absolute_path)), "body", e) for e in validator.iter_errors(parsed)]
    descriptions = _issue_descriptions(operation)
    issues = []
    for field, location, error in raw:
        if error is None:
            issue = "MISSING_REQUIRED_PARAMETER"
        else:
            issue = PAYPAL_ISSUES.get(str(error.validator), "INVALID_PARAMETER_VALUE")
            if error.validator == "required":
                missing = re.search(r"'([^']+)' is a required property", error.message)
                field = f"{field.rstrip('/')}/{missing.group(1) if missing else ''}"
        detail = {"field": field, "location": location, "issue": issue,
                  "description": descriptions.get(issue) or (error.message if error else f"{field} is required")}
        if error is not None and location == "body" and isinstance(error.instance, str | int | float):
            detail["value"] = str(error.instance)
        issues.append(detail)
    return issues


def paypal_request_problems(method: str, path: str, headers: Any, body: bytes) -> list[str] | None:
    issues = paypal_request_issues(method, path, headers, body)
    return None if issues is None else [f"{i['location']} {i['field']}: {i['issue']}" for i in issues]


def _response_schema(op: dict, doc: dict, status: int) -> dict | None:
    responses = op.get("responses") or {}
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        return None
    response = _resolve(doc, response)
    return ((response.get("content") or {}).get("application/json") or {}).get("schema")


def paypal_response_problems(method: str, path: str, status: int, body: Any) -> list[str] | None:
    operation = paypal_operation(method, path)
    if operation is None:
        return None
    doc = _paypal_doc(operation.spec_file)
    op = operation.op()
    if str(status) not in (op.get("responses") or {}) and status < 400:
        return [f"{status} is not an answer PayPal documents for {operation.name}"]
    schema = _response_schema(op, doc, status)
    if schema is None:
        return []
    return (_errors(_schema_validator(operation.spec_file, schema), body)
            + undeclared(operation.spec_file, schema, body))


# A webhook event's resource is the resource PayPal's API returns for it.
PAYPAL_RESOURCES = {
    "checkout-order": ("checkout_orders_v2.json", "/components/schemas/order"),
    "capture": ("payments_payment_v2.json", "/components/schemas/capture-2"),
    "refund": ("payments_payment_v2.json", "/components/schemas/refund"),
    "dispute": ("customer_disputes_v1.json", "/components/schemas/dispute"),
}


def paypal_event_problems(event: dict) -> list[str]:
    envelope = "/components/schemas/event"
    problems = _errors(_validator("notifications_webhooks_v1.json", envelope), event)
    resource_type = event.get("resource_type")
    if resource_type not in PAYPAL_RESOURCES:
        return [*problems, f"resource_type {resource_type!r}: no PayPal resource of that name is described here"]
    spec_file, pointer = PAYPAL_RESOURCES[resource_type]
    resource = event.get("resource")
    schema = {"$ref": "#" + pointer}
    return (problems + [f"resource {p}" for p in _errors(_validator(spec_file, pointer), resource)]
            + [f"resource {p}" for p in undeclared(spec_file, schema, resource)])


# =========================================================================== Stripe


@cache
def stripe_fixtures() -> dict[str, dict]:
    return json.loads((specs_dir() / "stripe" / "fixtures3.json").read_text())["resources"]


def _sdk_resource_class(object_type: str) -> type | None:
    from stripe._object_classes import OBJECT_CLASSES

    entry = OBJECT_CLASSES.get(object_type)
    if entry is None:
        return None
    module_name, class_name = entry
    __import__(module_name)
    return getattr(sys.modules[module_name], class_name)


def _annotations(cls: type) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(getattr(klass, "__annotations__", {}) or {})
    return merged


def _nullable(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith("Optional[") or "None" in annotation
    if isinstance(annotation, typing.ForwardRef):
        return _nullable(annotation.__forward_arg__)
    return typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(annotation)


def _fields_of(cls: type | None) -> dict[str, Any]:
    if cls is None:
        return {}
    namespace = sys.modules[cls.__module__].__dict__
    fields = {}
    for name, annotation in _annotations(cls).items():
        if isinstance(annotation, typing.ForwardRef):
            annotation = annotation.__forward_arg__
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace, vars(cls))  # noqa: S307 - the SDK's own text
            except NameError:
                pass
        fields[name] = annotation
    return fields


@cache
def _nullable_fields(object_type: str) -> frozenset[str]:
    return frozenset(name for name, annotation in _fields_of(_sdk_resource_class(object_type)).items()
                     if _nullable(annotation))


@cache
def _conditional_fields(object_type: str) -> frozenset[str]:
    fields = _fields_of(_sdk_resource_class(object_type))
    return frozenset(n for n in fields if not n.startswith("_") and not n.isupper()) - set(
        stripe_fixtures()[object_type])


def _neutral(value: Any, cls: type | None) -> Any:
    """The example `value` with every field the SDK types as Optional set to null,
    through nested objects (Stripe's example texts and ids are not ours to model)."""
    if not isinstance(value, dict) or cls is None:
        return copy.deepcopy(value)
    fields = _fields_of(cls)
    neutral = {}
    for key, item in value.items():
        annotation = fields.get(key)
        if annotation is not None and _nullable(annotation):
            neutral[key] = None
            continue
        nested = annotation if isinstance(annotation, type) and hasattr(annotation, "__annotations__") else None
        neutral[key] = _neutral(item, nested)
    return neutral


def stripe_template(object_type: str) -> dict:
    """A Stripe object of this type with every field the API returns: the fixture's
    value, or null wherever the SDK says the API may send null (at any depth). The fakes
    start from it and set what they model; nothing of the example's data stays."""
    return _neutral(stripe_fixtures()[object_type], _sdk_resource_class(object_type))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {str: "string", dict: "object", list: "array", float: "number"}.get(type(value), type(value).__name__)


def stripe_shape_problems(obj: Any, where: str = "") -> list[str]:
    """Fields missing from or foreign to a Stripe object, and fields of another kind than
    Stripe's example, recursively through lists and expanded objects."""
    if isinstance(obj, list):
        return [p for i, item in enumerate(obj) for p in stripe_shape_problems(item, f"{where}[{i}]")]
    if not isinstance(obj, dict):
        return []
    object_type = obj.get("object")
    if object_type == "list":
        extra = set(obj) - {"object", "url", "has_more", "data"}
        return ([f"{where}: list has {sorted(extra)}"] if extra else []) + stripe_shape_problems(
            obj.get("data") or [], f"{where}.data")
    fixtures = stripe_fixtures()
    if not isinstance(object_type, str) or object_type not in fixtures:
        return [p for key, value in obj.items() if isinstance(value, dict | list)
                for p in stripe_shape_problems(value, f"{where}.{key}")]
    example = fixtures[object_type]
    name = f"{where or object_type} ({object_type})"
    problems = [f"{name}: missing {key!r}" for key in example if key not in obj]
    # The fixture holds the fields every object of the type has; the SDK's class also
    # types those Stripe adds only in some states (a refund's failure_reason, pending_reason).
    conditional = _conditional_fields(object_type)
    problems += [f"{name}: {key!r} is not a field of a Stripe {object_type}" for key in obj
                 if key not in example and key not in conditional]
    for key, value in obj.items():
        if key not in example:
            if isinstance(value, dict | list):
                problems += stripe_shape_problems(value, f"{where or object_type}.{key}")
            continue
        expected = example[key]
        if value is not None and expected is not None and _kind(value) != _kind(expected):
            # An expandable field is an id or the expanded object.
            if not (_kind(expected) == "string" and isinstance(value, dict) and "object" in value):
                problems.append(f"{name}: {key!r} is {_kind(value)}, Stripe sends {_kind(expected)}")
        if value is None and expected is not None and key not in _nullable_fields(object_type):
            problems.append(f"{name}: {key!r} is null, which Stripe never sends")
        if isinstance(value, dict | list):
            problems += stripe_shape_problems(value, f"{where or object_type}.{key}")
    return problems


def stripe_error_problems(body: Any) -> list[str]:
    """An error answer is `{"error": {...}}` with the fields of the SDK's ErrorObject and a
    `type` Stripe documents; expanded objects in it are checked like any other."""
    from stripe._error_object import ErrorObject

    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return [f"an error answer is {{'error': {{...}}}}, not {body!r:.200}"]
    error = body["error"]
    known = set(_annotations(ErrorObject))
    problems = [f"error: {key!r} is not a field of a Stripe error" for key in error if key not in known]
    if error.get("type") not in ("api_error", "card_error", "idempotency_error", "invalid_request_error"):
        problems.append(f"error: type {error.get('type')!r} is not one Stripe sends")
    return problems + [p for key, value in error.items() if isinstance(value, dict)
                       for p in stripe_shape_problems(value, f"error.{key}")]


# --- requests: the SDK's TypedDicts at run time -----------------------------------

# Every Stripe call the project makes, and the parameter type the SDK gives it.
STRIPE_OPERATIONS: list[tuple[str, str, str]] = [
    ("POST", r"/v1/customers", "CustomerCreateParams"),
    ("GET", r"/v1/customers/[^/]+", "CustomerRetrieveParams"),
    ("POST", r"/v1/checkout/sessions", "checkout.SessionCreateParams"),
    ("GET", r"/v1/checkout/sessions/[^/]+", "checkout.SessionRetrieveParams"),
    ("POST", r"/v1/checkout/sessions/[^/]+/expire", "checkout.SessionExpireParams"),
    ("POST", r"/v1/payment_intents", "PaymentIntentCreateParams"),
    ("GET", r"/v1/payment_intents", "PaymentIntentListParams"),
    ("GET", r"/v1/payment_intents/[^/]+", "PaymentIntentRetrieveParams"),
    ("POST", r"/v1/payment_intents/[^/]+/confirm", "PaymentIntentConfirmParams"),
    ("POST", r"/v1/payment_intents/[^/]+/cancel", "PaymentIntentCancelParams"),
    ("GET", r"/v1/setup_intents/[^/]+", "SetupIntentRetrieveParams"),
    ("GET", r"/v1/payment_methods/[^/]+", "PaymentMethodRetrieveParams"),
    ("POST", r"/v1/payment_methods/[^/]+/detach", "PaymentMethodDetachParams"),
    ("POST", r"/v1/refunds", "RefundCreateParams"),
    ("GET", r"/v1/refunds", "RefundListParams"),
    ("GET", r"/v1/refunds/[^/]+", "RefundRetrieveParams"),
    ("POST", r"/v1/refunds/[^/]+/cancel", "RefundCancelParams"),
    ("GET", r"/v1/charges/[^/]+", "ChargeRetrieveParams"),
    ("GET", r"/v1/events", "EventListParams"),
    ("GET", r"/v1/events/[^/]+", "EventRetrieveParams"),
]


def stripe_params_class(method: str, path: str) -> type | None:
    import stripe.params

    for op_method, pattern, name in STRIPE_OPERATIONS:
        if op_method == method and re.fullmatch(pattern, path.rstrip("/")):
            target: Any = stripe.params
            for part in name.split("."):
                target = getattr(target, part)
            return target
    return None


def _typed_fields(cls: type) -> dict[str, tuple[Any, bool, dict]]:
    """A TypedDict's fields → (annotation, required, namespace to read it in), without the
    request options the SDK mixes into every params type (headers, not parameters)."""
    import typing_extensions
    from stripe._request_options import RequestOptions

    options = set(RequestOptions.__annotations__)
    namespace = sys.modules[cls.__module__].__dict__
    fields = {}
    for name, annotation in cls.__annotations__.items():
        if name in options and name not in cls.__dict__.get("__annotations__", {}):
            continue
        annotation = _evaluate(annotation, namespace)
        required = name in cls.__required_keys__  # type: ignore[attr-defined]  # a TypedDict's
        if typing.get_origin(annotation) in (typing_extensions.NotRequired, getattr(typing, "NotRequired", None)):
            required = False
            annotation = typing.get_args(annotation)[0]
        fields[name] = (annotation, required, namespace)
    return fields


def _evaluate(annotation: Any, namespace: dict) -> Any:
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        annotation = eval(annotation, namespace)  # noqa: S307 - the SDK's own annotation text
    return annotation


def _form_problems(annotation: Any, value: Any, param: str, namespace: dict) -> list[tuple[str, str]]:
    """(message, param) pairs in Stripe's wording for a form value against its type."""
    import typing_extensions

    annotation = _evaluate(annotation, namespace)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is object:
        return []
    if origin is typing.Union or isinstance(annotation, type(int | str)):
        options = [_form_problems(arg, value, param, namespace) for arg in args]
        return [] if any(not o for o in options) else options[0]
    if origin in (typing.Literal, typing_extensions.Literal):
        if value in [str(a).lower() if isinstance(a, bool) else str(a) for a in args]:
            return []
        return [(f"Invalid {param}: must be one of {', '.join(map(str, args))}", param)]
    if annotation is str:
        return [] if isinstance(value, str) else [(f"Invalid string: {param}", param)]
    if annotation is bool:
        return [] if value in ("true", "false") else [(f"Invalid boolean: {value}", param)]
    if annotation is int:
        return [] if isinstance(value, str) and re.fullmatch(r"-?\d+", value) else [
            (f"Invalid integer: {value}", param)]
    if annotation is float:
        return [] if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value) else [
            (f"Invalid decimal: {value}", param)]
    if origin is list:
        if not isinstance(value, list):
            return [(f"Invalid array: {param}", param)]
        return [p for i, item in enumerate(value) for p in _form_problems(args[0], item, f"{param}[{i}]", namespace)]
    if origin is dict:
        if not isinstance(value, dict):
            return [(f"Invalid object: {param}", param)]
        return [p for k, v in value.items() for p in _form_problems(args[1], v, f"{param}[{k}]", namespace)]
    if typing_extensions.is_typeddict(annotation):
        if not isinstance(value, dict):
            return [(f"Invalid object: {param}", param)]
        return typed_dict_problems(annotation, value, param)
    if getattr(origin or annotation, "__name__", "") == "UntypedStripeObject":
        return [] if isinstance(value, dict) else [(f"Invalid object: {param}", param)]
    raise AssertionError(f"provider_contract cannot check {annotation!r} (at {param}); teach it")


def typed_dict_problems(cls: type, params: dict, prefix: str = "") -> list[tuple[str, str]]:
    fields = _typed_fields(cls)
    problems = []
    for name, value in params.items():
        param = f"{prefix}[{name}]" if prefix else name
        if name not in fields:
            problems.append((f"Received unknown parameter: {param}", param))
            continue
        problems += _form_problems(fields[name][0], value, param, fields[name][2])
    for name, (_annotation, required, _namespace) in fields.items():
        if required and name not in params:
            param = f"{prefix}[{name}]" if prefix else name
            problems.append((f"Missing required param: {param}.", param))
    return problems


def stripe_request_problems(method: str, path: str, params: dict) -> list[tuple[str, str]] | None:
    """Stripe's objections to a request (message, param); None: a call we never check."""
    cls = stripe_params_class(method, path)
    if cls is None:
        return None
    return typed_dict_problems(cls, params)
