"""Tokenwise: chat with a pipeline of agents about your team's AI/LLM spend."""

__version__ = "0.1.0"
