from __future__ import annotations

import json

from tokenwise.agents import PIPELINE, catalogue


def test_catalogue_lists_every_agent_and_tool_as_json() -> None:
    data = catalogue()
    json.dumps(data)
    agents = {a["name"]: a for a in data["agents"]}
    assert list(agents) == ["supervisor", *PIPELINE]
    tools = {t["name"]: t for t in data["tools"]}
    assert {
        "classify_request",
        "check_data_sufficiency",
        "build_data_request",
        "measure_usage",
        "restate_question",
        "write_narrative",
        "evaluate_strategies",
        "plan_actions",
    } <= set(tools)
    for a in agents.values():
        assert a["description"]
        assert set(a["tools"]) <= set(tools)
    for t in tools.values():
        assert t["description"]
        assert t["args_schema"]["type"] == "object"


def test_catalogue_copies_schemas() -> None:
    catalogue()["tools"][0]["args_schema"]["type"] = "changed"
    assert catalogue()["tools"][0]["args_schema"]["type"] == "object"
