"""Notebook templates (issue 11): SampleDB's one-click analysis from the shared repository.

Every notebook in the repository under ``c.Templates.prefix`` (``templates/``)
is a template. ``/hub/templates`` lists them; ``/hub/templates/t/PATH`` (and
``/templates/t/PATH``, SampleDB's URL shape) takes ``params`` by GET or a
cross-site POST, carries them signed through login to a confirmation page,
and creates the filled notebook in the user's storage.

- :mod:`.params` checks parameters and fills ``{param}`` file names safely;
- :mod:`.links` signs a request into an expiring token;
- :mod:`.service` reads templates, injects parameters with papermill, writes copies;
- :mod:`.pages` and :mod:`.api` are the HTTP edge, :mod:`.cli` the command line.
"""

from __future__ import annotations

from gilhub.parts import NavLink, Part

part = Part(
    name="templates",
    handlers=("gilhub.notebook_templates.pages", "gilhub.notebook_templates.api"),
    nav=NavLink("Templates", "templates"),
    subcommands={
        "template": ("gilhub.notebook_templates.cli.TemplateApp", "Use notebook templates."),
    },
    configurables=("gilhub.notebook_templates.service.Templates",),
    start="gilhub.notebook_templates.service.start",
    service_attribute="notebook_templates",  # hub.templates is the hub's jinja2 environment
)
