"""Many served models in the registry in seconds, for start-up and memory benchmarks.

Registering a model through ``lisa_domain.registry`` is two transactions (create, then register)
with the version item, about a second each in moto on a loaded 2-core machine: 1,000 models take
~17 min. ``seed_models`` instead registers one model exactly as the workflows do, reads back the
item the registry wrote, and writes copies of it under the other ids with ``BatchWriteItem`` (25
items a call), so every seeded item is what the registry writes but for its ``modelId`` (and, with
``secret_prefix``, the ARN of the model's own provider-key secret, as an external model has). The
version is then bumped without the change log (``ADD version :one``), the way a change made outside
LISA is announced: a follower already running reloads the whole table once.
"""

from __future__ import annotations

from typing import Any

from bench._procs import Lisa

#: Items per BatchWriteItem call (DynamoDB's limit).
BATCH_WRITE_ITEMS = 25


def seed_models(
    lisa: Lisa, model_ids: list[str], backend_url: str, *, secret_prefix: str | None = None
) -> None:
    """Registered (served) models with these ids, each item as ``lisa.add_model`` writes it; with
    ``secret_prefix`` each model's key is its own Secrets Manager secret (``api_key_secret_arn``,
    stored by ``lisa_domain.secrets.ModelSecrets`` as the admin API stores an external model's key)."""
    import boto3

    from lisa_contracts.names import REGISTRY_VERSION_KEY
    from lisa_domain.dynamo import to_attribute, to_item
    from lisa_domain.litellm_params import API_KEY_SECRET_ARN
    from lisa_domain.registry import LITELLM_PARAMS
    from lisa_domain.secrets import ModelSecrets

    if not model_ids:
        return
    client: Any = boto3.client("dynamodb", endpoint_url=lisa.moto_url)
    secrets = (
        ModelSecrets(secret_prefix, boto3.client("secretsmanager", endpoint_url=lisa.moto_url))
        if secret_prefix
        else None
    )

    def params(model_id: str) -> dict[str, Any] | None:
        if secrets is None:
            return None
        arn = secrets.store(model_id, "unused")
        return {"model": "openai/echo", "api_base": backend_url, API_KEY_SECRET_ARN: arn}

    template_id, *copies = model_ids
    lisa.add_model(template_id, backend_url)
    if (template_params := params(template_id)) is not None:
        lisa.registry.register(
            template_id, template_params, allowed_from=[lisa.registry.get(template_id).status]
        )
    template = to_item(lisa.registry.get_item(template_id))
    for start in range(0, len(copies), BATCH_WRITE_ITEMS):
        request = []
        for model_id in copies[start : start + BATCH_WRITE_ITEMS]:
            item = {**template, "modelId": {"S": model_id}}
            if (own := params(model_id)) is not None:
                item[LITELLM_PARAMS] = to_attribute(own)
            request.append({"PutRequest": {"Item": item}})
        unprocessed: dict[str, Any] = {lisa.models_table: request}
        while unprocessed:
            unprocessed = client.batch_write_item(RequestItems=unprocessed).get("UnprocessedItems") or {}
    client.update_item(
        TableName=lisa.models_table,
        Key={"modelId": {"S": REGISTRY_VERSION_KEY}},
        UpdateExpression="ADD version :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
