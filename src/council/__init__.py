"""AI Council: a council of LLM personas that turns a feature request into a verified change."""

__version__ = "0.1.0"
