"""Per-model provider keys in Secrets Manager; the registry keeps only the secret's ARN."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError


class ModelSecrets:
    def __init__(self, prefix: str, client: Any = None) -> None:
        self._prefix = prefix
        self._client = client or boto3.client("secretsmanager")

    @property
    def prefix(self) -> str:
        """``MODEL_SECRET_PREFIX``: every secret a model uses is named under it (IAM is scoped to it)."""
        return self._prefix

    def name_for(self, model_id: str) -> str:
        return f"{self._prefix}{model_id}"

    def store(self, model_id: str, api_key: str) -> str:
        """Store the key as a new secret; returns its ARN."""
        response = self._client.create_secret(
            Name=self.name_for(model_id),
            SecretString=api_key,
            Description=f"LISA provider API key of model {model_id}",
            Tags=[{"Key": "lisa:model-id", "Value": model_id}],
        )
        return str(response["ARN"])

    def read(self, secret_arn: str) -> str:
        return str(self._client.get_secret_value(SecretId=secret_arn)["SecretString"])

    def delete(self, secret_id: str) -> None:
        """Delete at once (no recovery window: the model is gone); a missing secret is fine."""
        try:
            self._client.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
