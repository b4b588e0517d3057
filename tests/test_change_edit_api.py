"""The Describe-the-changes and Edit-by-text tabs through gradio_client against the served app
(the shared bad-input cases for their upload slots are in test_app_api.py)."""
from __future__ import annotations

import pytest
from app_server import app_url  # noqa: F401  (session fixture: the app on a free port)
from conftest import EXAMPLES

pytestmark = pytest.mark.server
CHANGES = EXAMPLES / "changes"


@pytest.fixture(scope="module")
def client(app_url):  # noqa: F811
    from gradio_client import Client
    return Client(app_url, verbose=False)


def test_change_endpoint_describes_the_moved_cup(client):
    from gradio_client import handle_file
    sentences, before_map, after_map, changes, details = client.predict(
        handle_file(str(CHANGES / "moved_cup_before.jpg")),
        handle_file(str(CHANGES / "moved_cup_after.jpg")), "efficientnet_lite0",
        api_name="/change")
    assert "1. **moved**" in sentences and before_map and after_map
    assert [c["type"] for c in changes["changes"]] == ["moved"]
    assert "efficientnet_lite0" in details


def test_change_endpoint_no_change_pair_and_missing_image(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    sentences, *_, changes, _ = client.predict(
        handle_file(str(CHANGES / "nochange_cat_shift_before.jpg")),
        handle_file(str(CHANGES / "nochange_cat_shift_after.jpg")), "efficientnet_lite0",
        api_name="/change")
    assert "No change" in sentences and changes["caption"] == "no change"
    with pytest.raises(AppError, match="after image"):
        client.predict(handle_file(str(CHANGES / "moved_cup_before.jpg")), None,
                       "efficientnet_lite0", api_name="/change")


def test_edit_endpoint_recolours_and_reports_nothing_changed_outside(client):
    from gradio_client import handle_file
    slider, heatmap, region, info, details = client.predict(
        handle_file(str(EXAMPLES / "cat.jpg")), "make the cat purple", "efficientnet_lite0",
        20, 7.5, 1.5, 0, api_name="/edit")
    assert len(slider) == 2 and heatmap and region
    assert info["operation"] == "recolour" and info["target"] == "cat"
    assert info["changed_fraction_outside"] == 0 and 0.2 < info["changed_fraction"] < 0.95


def test_edit_endpoint_refuses_what_it_cannot_do_and_falls_back_offline(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="It can: recolour"):
        client.predict(handle_file(str(EXAMPLES / "cat.jpg")), "make the cat fly",
                       "efficientnet_lite0", 20, 7.5, 1.5, 0, api_name="/edit")
    *_, info, details = client.predict(
        handle_file(str(EXAMPLES / "coffee.jpg")), "turn it black and white",
        "instruct-pix2pix", 2, 7.5, 1.5, 0, api_name="/edit")
    assert info["model"] == "efficientnet_lite0" and "cannot be reached" in details


def test_edit_masked_endpoint_changes_only_the_painted_region(client):
    from gradio_client import handle_file
    editor = {"background": handle_file(str(EXAMPLES / "astronaut.jpg")),
              "layers": [handle_file(str(EXAMPLES / "edit" / "astronaut_helmet_mask.png"))],
              "composite": None}
    *_, info, details = client.predict(editor, "gold", "efficientnet_lite0", 20, 7.5, 1.5, 0,
                                       api_name="/edit_masked")
    assert info["target"] == "the painted region" and info["operation"] == "recolour"
    assert info["changed_fraction_outside"] == 0 and 0.05 < info["changed_fraction"] < 0.2
