"""The real workload traces shared by all checkouts (../shared/data next to the repository)."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
# The repository lives at <root>/main and the data at <root>/shared/data, locally and in CI.
_CANDIDATES = (_REPO.parent / "shared" / "data", _REPO / ".." / "shared" / "data", Path("/work/shared/data"))


def shared_data_dir() -> Path:
    """The shared data directory (SHARED_DATA_DIR overrides the layout above)."""
    override = os.environ.get("SHARED_DATA_DIR")
    for candidate in ((Path(override),) if override else ()) + _CANDIDATES:
        if candidate.is_dir():
            return candidate.resolve()
    raise FileNotFoundError(f"no shared data directory; looked in {', '.join(map(str, _CANDIDATES))}")


def shared_data_path(name: str) -> Path:
    """A file of the shared data directory, e.g. `azure_llm_inference_2023_code.csv`."""
    path = shared_data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not in {path.parent}")
    return path


AZURE_CODE = "azure_llm_inference_2023_code.csv"
AZURE_CONV = "azure_llm_inference_2023_conv.csv"
AZURE_ROWS = {AZURE_CODE: 8819, AZURE_CONV: 19366}
