"""The models-as-code file (``models.yaml``): what ``lisa apply`` reads and ``lisa export`` writes.

```yaml
models:
  - modelId: gpt-mini
    modelName: openai/gpt-4o-mini
    modelType: textgen
    apiKey: {fromEnv: OPENAI_API_KEY}          # or {fromSecretsManager: <secret ARN or name>}
  - modelId: e5
    ...                                         # any field of POST /models
    enabled: false                              # optional: keep the model stopped
```

Each entry is a ``POST /models`` body (validated with the schema module's ``CreateModelRequest``),
except that ``apiKey`` must be a reference, never a literal key, and ``enabled`` (optional) says
whether the model should run; absent means "leave as it is".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from lisa_domain.schema import CreateModelRequest, ModelDefinition, ModelRecord


class ModelFileError(Exception):
    """The file is not a valid models file; the message names the entry and the field."""


class KeyReference(BaseModel):
    """Where a provider key comes from: an environment variable or a Secrets Manager secret."""

    model_config = ConfigDict(extra="forbid")

    fromEnv: str | None = None
    fromSecretsManager: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> KeyReference:
        if (self.fromEnv is None) == (self.fromSecretsManager is None):
            raise ValueError("give exactly one of fromEnv or fromSecretsManager")
        return self

    def describe(self) -> str:
        return f"env {self.fromEnv}" if self.fromEnv else f"secret {self.fromSecretsManager}"

    def resolve(self) -> str:
        """The key's value (read now, never stored or printed)."""
        if self.fromEnv:
            value = os.environ.get(self.fromEnv)
            if not value:
                raise ModelFileError(f"apiKey: environment variable {self.fromEnv} is not set")
            return value
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            secret = boto3.client("secretsmanager").get_secret_value(SecretId=self.fromSecretsManager)
        except (BotoCoreError, ClientError) as error:
            raise ModelFileError(
                f"apiKey: secret {self.fromSecretsManager} could not be read: {error}"
            ) from error
        value = secret.get("SecretString")
        if not value:
            raise ModelFileError(f"apiKey: secret {self.fromSecretsManager} has no string value")
        return str(value)


@dataclass(frozen=True)
class DesiredModel:
    """One entry of the file."""

    request: CreateModelRequest  # without apiKey
    api_key: KeyReference | None = None
    enabled: bool | None = None
    #: Top-level fields the entry sets (fields the server fills when absent are compared only then).
    given: frozenset[str] = field(default_factory=frozenset)

    @property
    def model_id(self) -> str:
        return self.request.modelId

    def definition(self) -> ModelDefinition:
        return self.request.definition()


def problems(error: ValidationError, prefix: str = "") -> str:
    """Every problem of a validation error as ``<prefix>.<field>: <message>``, joined by "; "."""
    found = []
    for detail in error.errors():
        where = ".".join(str(part) for part in (prefix, *detail["loc"]) if part != "")
        found.append(f"{where or 'value'}: {str(detail['msg']).removeprefix('Value error, ')}")
    return "; ".join(found)


def parse_entry(entry: Any, index: int = 0) -> DesiredModel:
    if not isinstance(entry, dict):
        raise ModelFileError(f"models[{index}]: must be a mapping of model fields")
    body = {key: value for key, value in entry.items() if value is not None}
    enabled = body.pop("enabled", None)
    if enabled is not None and not isinstance(enabled, bool):
        raise ModelFileError(f"models[{index}].enabled: must be true or false")
    key = body.pop("apiKey", None)
    reference = None
    if key is not None:
        if not isinstance(key, dict):
            raise ModelFileError(
                f"models[{index}].apiKey: a literal key is not allowed in the file; "
                "use {fromEnv: NAME} or {fromSecretsManager: ARN}"
            )
        try:
            reference = KeyReference.model_validate(key)
        except ValidationError as error:
            raise ModelFileError(problems(error, f"models[{index}].apiKey")) from error
    try:
        request = CreateModelRequest.model_validate(body)
    except ValidationError as error:
        raise ModelFileError(problems(error, f"models[{index}]")) from error
    return DesiredModel(request, reference, enabled, frozenset(body))


def parse(text: str, source: str = "models file") -> list[DesiredModel]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ModelFileError(f"{source}: not valid YAML: {error}") from error
    if document is None:
        document = {"models": []}
    if (
        not isinstance(document, dict)
        or set(document) - {"models"}
        or not isinstance(document.get("models", []), list)
    ):
        raise ModelFileError(f"{source}: expected a mapping with one key, models: [...]")
    models = [parse_entry(entry, index) for index, entry in enumerate(document.get("models") or [])]
    seen: set[str] = set()
    for index, model in enumerate(models):
        if model.model_id in seen:
            raise ModelFileError(f"models[{index}].modelId: '{model.model_id}' is listed twice")
        seen.add(model.model_id)
    return models


def entry_of(record: ModelRecord) -> dict[str, Any]:
    """A model as a file entry: its definition without default values (and ``enabled: false`` for a
    stopped model), so that applying the exported file changes nothing."""
    definition = ModelDefinition.model_validate(record.model_dump(include=set(ModelDefinition.model_fields)))
    entry = definition.model_dump(mode="json", exclude_defaults=True)
    if not record.enabled:
        entry["enabled"] = False
    return entry


def dump(entries: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"models": entries}, sort_keys=False, allow_unicode=True)
