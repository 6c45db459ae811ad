"""Times on pages: UTC in the HTML (for readers without JavaScript), the reader's zone in the
browser (tests/browser/test_accessibility.py shows that part)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gilhub.pagetime import time_element


def test_a_time_is_written_in_utc_with_its_iso_form():
    moment = datetime(2026, 11, 2, 11, 30, tzinfo=timezone(timedelta(hours=1)))

    assert time_element(moment) == (
        '<time datetime="2026-11-02T10:30:00+00:00">2026-11-02 10:30 UTC</time>'
    )


def test_no_time_is_a_dash_or_the_word_given():
    assert time_element(None) == "—"
    assert time_element(None, "never") == "never"
