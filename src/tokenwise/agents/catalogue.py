"""The built-in agents in pipeline order, and the catalogue of agents and tools served by the API."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from tokenwise.agents.actions import ACTIONS
from tokenwise.agents.data import DATA
from tokenwise.agents.data_helper import DATA_HELPER
from tokenwise.agents.optimization import OPTIMIZATION
from tokenwise.agents.reporting import REPORTING
from tokenwise.agents.tooling import JSON, Agent
from tokenwise.agents.triage import TRIAGE

SUPERVISOR = "supervisor"
SUPERVISOR_DESCRIPTION = "Runs the sub-agents in order and always finishes with a report."
# data_helper runs only when triage finds no usage data; reporting always runs.
PIPELINE = ("triage", "data_helper", "data", "optimization", "actions", "reporting")


def default_agents() -> dict[str, Agent]:
    """The built-in sub-agents, keyed by name."""
    return {agent.name: agent for agent in (TRIAGE, DATA_HELPER, DATA, OPTIMIZATION, ACTIONS, REPORTING)}


def catalogue(agents: Mapping[str, Agent] | None = None) -> JSON:
    """Plain JSON data for `GET /api/agents` (`["agents"]`) and `GET /api/tools` (`["tools"]`)."""
    roster = default_agents() if agents is None else agents
    listed = [
        {"name": SUPERVISOR, "description": SUPERVISOR_DESCRIPTION, "tools": [], "pipeline": list(PIPELINE)}
    ]
    tools: dict[str, JSON] = {}
    for name in PIPELINE:
        agent = roster.get(name)
        if agent is None:
            continue
        listed.append(
            {"name": agent.name, "description": agent.description, "tools": [t.name for t in agent.tools]}
        )
        for tool in agent.tools:
            # Deep copies: callers may serialise or alter the data without touching the tools themselves.
            tools.setdefault(
                tool.name,
                {
                    "name": tool.name,
                    "description": tool.description,
                    "args_schema": copy.deepcopy(tool.args_schema),
                    "agent": agent.name,
                },
            )
    return {"agents": listed, "tools": list(tools.values())}
