"""`council serve`: the REST API, Server-Sent Events, API keys, dashboard and metrics."""
