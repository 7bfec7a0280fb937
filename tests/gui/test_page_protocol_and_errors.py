"""Every page takes the session one way (``SessionPage``); the GUI shows a ``PneumoDeskError``'s sentence and logs
anything else as a bug."""

from __future__ import annotations

import logging

from pneumodesk.errors import PneumoDeskError
from pneumodesk.gui.pages.base import SessionPage
from pneumodesk.gui.workers.background import plain_error


def test_every_page_is_a_session_page_that_holds_the_signed_in_session(window):
    pages = [window.pages.widget(i) for i in range(window.pages.count())]

    assert pages and all(isinstance(page, SessionPage) for page in pages)
    assert all(page.session == window.session for page in pages)


def test_signing_out_hands_every_page_no_session(window):
    window.sign_out()

    assert all(window.pages.widget(i).session is None for i in range(window.pages.count()))
    assert window.root.currentWidget() is window.gate


def test_a_pneumodesk_error_is_shown_as_its_sentence_and_not_logged(caplog):
    with caplog.at_level(logging.ERROR):
        shown = plain_error(PneumoDeskError("The dataset folder has no NORMAL subfolder."))

    assert shown == "The dataset folder has no NORMAL subfolder."
    assert not caplog.records


def test_any_other_error_is_logged_as_a_bug_and_named_to_the_user(caplog):
    with caplog.at_level(logging.ERROR):
        shown = plain_error(KeyError("weights"))

    assert shown.startswith("Something went wrong (KeyError")
    assert caplog.records and caplog.records[0].exc_info is not None
