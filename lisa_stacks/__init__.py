"""LISA's CDK constructs and stacks (see docs/architecture.md)."""
