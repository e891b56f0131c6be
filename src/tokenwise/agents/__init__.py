"""Built-in agents: the supervisor pipeline, its sub-agents and their tools."""

from tokenwise.agents.catalogue import PIPELINE, catalogue, default_agents
from tokenwise.agents.supervisor import run_pipeline

__all__ = ["PIPELINE", "catalogue", "default_agents", "run_pipeline"]
