"""The activity narrative (issue 13): cell executions recorded per user, a rare "what are
you trying to do?", and the story of each notebook. Off until a site enables it.

- :mod:`.schema` describes the tables (``sql/008_activity.sql``: per user, row-level
  security), :mod:`.query` queries them (raising :mod:`.errors`);
- :mod:`.events` checks what the front end reports; :mod:`.rules` decides when to ask
  (pure, no database); :mod:`.recorder` stores and asks, in each user's server (whose
  handlers are :mod:`gilhub.serverext.activity`), with the site's settings of :mod:`.site`;
- :mod:`.narrative` tells a notebook's story (JSON, Markdown, notebook);
- :mod:`.service` is the configurable :class:`~.service.Activity` (``hub.activity``):
  settings, narratives, deletion, counts, retention; :mod:`.api` and :mod:`.pages` are
  the hub's HTTP edge (:mod:`.web`: errors to statuses).
"""

from gilhub.parts import NavLink, Part

part = Part(
    name="activity",
    handlers=("gilhub.activity.api", "gilhub.activity.pages"),
    nav=NavLink("Activity", "activity"),
    configurables=("gilhub.activity.service.Activity",),
    migrations=("008_activity.sql",),
    start="gilhub.activity.service.start",
    stop="gilhub.activity.service.stop",
    service_attribute="activity",
)
