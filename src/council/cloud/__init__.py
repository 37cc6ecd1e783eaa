"""Cloud operations for `council doit`: intent, prices and cost, budgets, strategies (Azure CLI,
Python SDK, MCP, Terraform), execution with retry, fallback and rollback, failure analysis.

A library the doit flow uses; it imports nothing above it (no pipelines, no CLI).
"""
