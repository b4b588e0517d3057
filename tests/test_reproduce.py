"""The "reproduce" JSON beside a result (issue 16): a caption, an edit (instruction and caption
+ mask) and a few-shot result, run again through ``python -m engine reproduce``, give the same
output; a changed setting or a missing input is told apart."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from engine.recipe import FORMAT, pixel_hash

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"


def _reproduce(recipe: dict, tmp_path: Path, capsys, *files: Path
               ) -> tuple[int, dict | None, str]:
    path = tmp_path / f"{recipe['command']}.json"
    path.write_text(json.dumps(recipe))
    args = ["reproduce", str(path)] + (["--files", *map(str, files)] if files else [])
    code = main(args)
    captured = capsys.readouterr()
    out = captured.out.strip()
    return code, (json.loads(out) if out else None), captured.err


def test_a_caption_reproduces_from_a_renamed_reencoded_copy(tmp_path, capsys):
    from demos.caption import caption_with_recipe
    caption, label, _, _, recipe = caption_with_recipe(str(EXAMPLES / "cat.jpg"))
    assert recipe["format"] == FORMAT and recipe["command"] == "caption"
    assert recipe["model"] == "efficientnet_lite0" and recipe["output"]["caption"] == caption
    assert {"python", "torch", "gradio"} <= set(recipe["versions"])
    # the photo, decoded by the input rules, saved losslessly under another name
    from engine.inputs.images import load_image
    copy = tmp_path / "photos" / "renamed.png"
    copy.parent.mkdir()
    load_image(EXAMPLES / "cat.jpg", max_side=1024).image.save(copy)
    assert recipe["inputs"][0]["sha256"] == pixel_hash(Image.open(copy).convert("RGB"))
    code, out, _ = _reproduce(recipe, tmp_path, capsys, copy.parent)
    assert code == 0 and out["reproduced"] is True and out["output"] == recipe["output"]


def test_an_instruction_edit_reproduces_pixel_for_pixel(tmp_path, capsys):
    from demos.edit import edit_image_with_recipe
    *_, recipe = edit_image_with_recipe(str(EXAMPLES / "cat.jpg"), "make the cat purple",
                                        progress=lambda *a, **k: None)
    assert recipe["settings"]["text"] == "make the cat purple"
    code, out, _ = _reproduce(recipe, tmp_path, capsys)  # cat.jpg is found in assets/
    assert code == 0 and out["reproduced"] is True
    assert out["output"]["image_sha256"] == recipe["output"]["image_sha256"]


def test_a_masked_edit_carries_its_painted_mask(tmp_path, capsys):
    from demos.edit import edit_masked_with_recipe, mask_example_value
    *_, recipe = edit_masked_with_recipe(mask_example_value(1), "gold",
                                         progress=lambda *a, **k: None)
    assert [r["role"] for r in recipe["inputs"]] == ["image", "mask"]
    code, out, _ = _reproduce(recipe, tmp_path, capsys)
    assert code == 0 and out["reproduced"] is True


def test_a_fewshot_result_reproduces_with_its_support_set(tmp_path, capsys):
    from demos.common import STATE_IMAGE_SIDE
    from demos.fewshot import EXAMPLES as FS_EXAMPLES, classify_with_recipe
    from engine.fewshot.support import read_support_folder
    support = read_support_folder(FS_EXAMPLES / "support", max_side=STATE_IMAGE_SIDE)
    query = sorted((FS_EXAMPLES / "query").glob("*.jpg"))[0]
    *_, recipe = classify_with_recipe(support, [str(query)], None, "protonet",
                                      "efficientnet_lite0")
    roles = [r["role"] for r in recipe["inputs"]]
    assert roles.count("support") == len(support.images) and roles.count("query") == 1
    assert recipe["settings"]["classes"] == list(support.names)
    code, out, _ = _reproduce(recipe, tmp_path, capsys)
    assert code == 0 and out["reproduced"] is True
    assert out["output"]["predictions"] == recipe["output"]["predictions"]


def test_a_different_output_is_reported_and_exits_1(tmp_path, capsys):
    from demos.edit import edit_image_with_recipe
    *_, recipe = edit_image_with_recipe(str(EXAMPLES / "cat.jpg"), "make the cat purple",
                                        progress=lambda *a, **k: None)
    recipe["settings"]["text"] = "make the cat green"  # not what produced the output
    code, out, _ = _reproduce(recipe, tmp_path, capsys)
    assert code == 1 and out["reproduced"] is False
    assert out["output"]["image_sha256"] != out["recorded"]["image_sha256"]


def test_a_missing_input_or_a_non_recipe_is_a_users_mistake(tmp_path, capsys):
    from demos.caption import caption_with_recipe
    *_, recipe = caption_with_recipe(str(EXAMPLES / "cat.jpg"))
    recipe["inputs"][0]["sha256"] = "0" * 64
    code, out, err = _reproduce(recipe, tmp_path, capsys)
    assert code == 2 and out is None and "was not found" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert main(["reproduce", str(bad)]) == 2
    assert "not a recipe" in capsys.readouterr().err


def test_recipes_do_not_change_what_the_api_returns():
    """The recipe travels in a gr.State, which the API leaves out: each endpoint still
    returns exactly the outputs it returned before."""
    from app import build_app
    endpoints = build_app().get_api_info()["named_endpoints"]
    assert [len(endpoints[f"/{n}"]["returns"]) for n in
            ("caption", "edit", "edit_masked", "fewshot_classify")] == [4, 5, 5, 4]


@pytest.mark.parametrize("field", ["format", "command"])
def test_read_recipe_refuses_a_wrong_format_or_command(tmp_path, field):
    from engine.errors import UserInputError
    from engine.recipe import read_recipe
    recipe = {"format": FORMAT, "command": "caption", field: "nope"}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(recipe))
    with pytest.raises(UserInputError):
        read_recipe(path)
