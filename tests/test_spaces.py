"""The README's YAML header, read as a Hugging Face Space reads it (issue 16).

The schema below is the Spaces configuration reference
(https://huggingface.co/docs/hub/spaces-config-reference, read 2026-11-29): every key it lists
with its type, and the values it enumerates. ``license`` is the Hub's repository-card key
(every repository type accepts it). A key outside this table is a typo the Hub would ignore.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

#: key -> accepted Python type(s) after YAML parsing (the reference's string/int/boolean/list/dict).
SPACES_KEYS: dict[str, type | tuple[type, ...]] = {
    "title": str, "emoji": str, "colorFrom": str, "colorTo": str, "sdk": str,
    "python_version": str, "sdk_version": str, "suggested_hardware": str,
    "suggested_storage": str, "app_file": str, "app_build_command": str, "app_port": int,
    "base_path": str, "fullWidth": bool, "header": str, "short_description": str,
    "models": list, "datasets": list, "tags": list, "thumbnail": str, "pinned": bool,
    "hf_oauth": bool, "hf_oauth_scopes": list, "hf_oauth_expiration_minutes": int,
    "hf_oauth_authorized_org": (str, list), "hf_oauth_redirect_path": str,
    "disable_embedding": bool, "startup_duration_timeout": str, "custom_headers": dict,
    "preload_from_hub": list, "license": str,
}
COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
SDKS = {"gradio", "docker", "static", "streamlit"}
#: Hardware flavours the reference lists (CPU, GPU, TPU).
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1",
            "l40sx4", "l40sx8", "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4",
            "a100-large", "a100x4", "a100x8", "v5e-1x1", "v5e-2x2", "v5e-2x4"}
#: The Hub refuses a header that preloads more than 10 repositories ("preload models limited
#: to 10", the configuration error a Space shows).
MAX_PRELOAD = 10
#: A hub repository id: "owner/name" (letters, digits, "-", "_", ".").
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def read_header(text: str) -> dict:
    """The YAML block between the first two ``---`` lines of a README.

    Raises:
        ValueError: the README does not start with a ``---`` block.
    """
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    if match is None:
        raise ValueError("no YAML header: the README must start with a '---' block")
    return yaml.safe_load(match.group(1))


def schema_errors(header: dict) -> list[str]:
    """Every way ``header`` breaks the Spaces configuration reference (empty: none)."""
    errors = [f"unknown key {k!r}" for k in header if k not in SPACES_KEYS]
    errors += [f"{k}: expected {SPACES_KEYS[k]}, got {type(v).__name__} {v!r}"
               for k, v in header.items()
               if k in SPACES_KEYS and not isinstance(v, SPACES_KEYS[k])]
    for key in ("colorFrom", "colorTo"):
        if key in header and header[key] not in COLOURS:
            errors.append(f"{key}: {header[key]!r} is not one of {sorted(COLOURS)}")
    if header.get("sdk") not in SDKS:
        errors.append(f"sdk: {header.get('sdk')!r} is not one of {sorted(SDKS)}")
    if "suggested_hardware" in header and header["suggested_hardware"] not in HARDWARE:
        errors.append(f"suggested_hardware: {header['suggested_hardware']!r} is no flavour")
    if "python_version" in header and not re.fullmatch(r"3\.\d+(\.\d+)?",
                                                        str(header["python_version"])):
        errors.append(f"python_version: {header['python_version']!r} is not 3.x or 3.x.x")
    for key in ("models", "preload_from_hub"):
        for item in header.get(key, []) or []:
            repo = str(item).split()[0] if item else ""
            if not REPO_ID.match(repo):
                errors.append(f"{key}: {item!r} does not start with a hub repo id")
    if len(header.get("preload_from_hub", []) or []) > MAX_PRELOAD:
        errors.append(f"preload_from_hub: more than {MAX_PRELOAD} repositories")
    return errors


@pytest.fixture(scope="module")
def header() -> dict:
    return read_header((ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_header_uses_only_documented_keys_with_their_types(header):
    assert schema_errors(header) == []


def test_schema_check_catches_a_typo_a_wrong_type_and_an_unknown_flavour():
    bad = {"sdk": "gradio", "sdk_verison": "6.31.0", "pinned": "no",
           "suggested_hardware": "gpu-large", "python_version": 3.1, "colorFrom": "teal"}
    errors = schema_errors(bad)
    assert any("sdk_verison" in e for e in errors)
    assert any(e.startswith("pinned:") for e in errors)
    assert any(e.startswith("suggested_hardware:") for e in errors)
    assert any(e.startswith("python_version:") for e in errors)  # 3.1 (a float): not "3.10"
    assert any(e.startswith("colorFrom:") for e in errors)


def test_header_python_is_the_tested_python(header):
    tested = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert str(header["python_version"]) == tested
    assert f"Python {tested}" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_sdk_version_is_the_pinned_and_installed_gradio(header):
    import gradio
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(),
                           re.M))
    assert header["sdk"] == "gradio"
    assert header["sdk_version"] == pins["gradio"] == gradio.__version__


def test_app_file_exists_and_hardware_is_a_gpu_flavour(header):
    assert (ROOT / header["app_file"]).is_file()
    # the diffusion editors need a GPU to answer within a lecture's patience (docs/deployment.md)
    assert header["suggested_hardware"].startswith(("t4", "l4", "a10g", "a100", "l40s"))


def test_every_hub_model_a_tab_offers_is_preloaded_and_linked(header):
    from engine.factory import offered_hub_models
    repos = set(offered_hub_models().values())
    assert repos, "the registry offers no hub model"
    preloaded = {str(item).split()[0] for item in header["preload_from_hub"]}
    assert preloaded == repos
    assert set(header["models"]) == repos
