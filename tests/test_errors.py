"""How errors reach people: a user's mistake keeps its one-line message, a bug is logged with its
traceback and shown as a short internal-error line (app handlers and the CLI)."""
from __future__ import annotations

import logging

import gradio as gr
import pytest

from demos.common import INTERNAL_ERROR, handle_errors
from engine.cli import main
from engine.errors import UserInputError
from engine.inputs.images import ImageInputError
from engine.models import OFFLINE_MESSAGE, HubUnavailableError


def _raising(exc: BaseException):
    @handle_errors
    def handler():
        raise exc
    return handler


@pytest.mark.parametrize("exc", [UserInputError("The support set has 1 class(es)."),
                                 ImageInputError("cat.svg is an SVG drawing.")])
def test_user_mistakes_show_their_own_message_without_traceback(exc, caplog):
    with caplog.at_level(logging.INFO, logger="demo"), pytest.raises(gr.Error) as info:
        _raising(exc)()
    assert info.value.message == str(exc)
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize("exc", [ValueError("matrix shapes (3, 4) and (5, 6)"),
                                 KeyError("features"), RuntimeError("CUDA")])
def test_internal_errors_are_logged_with_traceback_and_shown_briefly(exc, caplog):
    with caplog.at_level(logging.INFO, logger="demo"), pytest.raises(gr.Error) as info:
        _raising(exc)()
    assert info.value.message == INTERNAL_ERROR
    assert str(exc).strip("'") not in info.value.message  # internals are not shown
    assert any(r.exc_info and r.exc_info[0] is type(exc) for r in caplog.records)


def test_unreachable_hub_is_one_sentence():
    with pytest.raises(gr.Error) as info:
        _raising(HubUnavailableError("blip-base: offline"))()
    assert info.value.message == OFFLINE_MESSAGE


def test_cli_user_mistake_is_one_line_exit_2(capsys, tmp_path):
    svg = tmp_path / "drawing.png"
    svg.write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    assert main(["caption", str(svg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "SVG" in err[0]


def test_cli_internal_error_exits_1_with_traceback(monkeypatch, capsys, caplog):
    from engine.cli import caption

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(caption, "run", broken)
    with caplog.at_level(logging.ERROR, logger="engine.cli"):
        assert main(["caption", "whatever.jpg"]) == 1
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)
