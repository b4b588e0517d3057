"""Shared fixtures: offline environment, the shared bad-input cases, example photos."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Never reach a hub from tests: hub paths are tested with tiny models built from configs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_server import app_url  # noqa: E402,F401  (one served app for the whole session)



def shared_dir() -> Path:
    """The project's ../shared folder (override with SHARED_DIR)."""
    return Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def cases_dir(tmp_path_factory) -> Path:
    """The bad-input files of ../shared/cases, written by its make_cases.py."""
    script = shared_dir() / "cases" / "make_cases.py"
    if not script.exists():
        pytest.fail(f"{script} not found: set SHARED_DIR to the project's shared/ folder")
    out = tmp_path_factory.mktemp("cases")
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def case_texts(cases_dir) -> dict[str, str]:
    return json.loads((cases_dir / "texts.json").read_text())


@pytest.fixture(scope="session")
def cat_image():
    from engine.inputs.images import load_image
    return load_image(EXAMPLES / "cat.jpg").image


@pytest.fixture(scope="session")
def coffee_image():
    from engine.inputs.images import load_image
    return load_image(EXAMPLES / "coffee.jpg").image
