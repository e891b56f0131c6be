"""Understanding questions without a language model: the built-in parser and its parts."""

from tokenwise.agents.understanding.follow_ups import Turn
from tokenwise.agents.understanding.parser import parse

__all__ = ["Turn", "parse"]
