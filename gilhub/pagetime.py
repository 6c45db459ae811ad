"""Times on the hub's pages: written in UTC for readers without JavaScript, shown in the
reader's own time zone by ``static/js/localtime.js``."""

from __future__ import annotations

from datetime import datetime, timezone

from markupsafe import Markup, escape


def time_element(moment: datetime | None, empty: str = "—") -> Markup:
    """``<time datetime="ISO">YYYY-MM-DD HH:MM UTC</time>``, or ``empty`` for no time."""
    if moment is None:
        return escape(empty)
    utc = moment.astimezone(timezone.utc) if moment.tzinfo else moment
    return Markup('<time datetime="{}">{} UTC</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M")
    )
