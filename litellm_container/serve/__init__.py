"""LISA's serve app: the OpenAI-compatible user API on LiteLLM's Router (see docs/serve-api.md)."""
