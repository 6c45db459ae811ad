"""gilhub: a lightweight multi-user notebook hub for small lab teams."""

__version__ = "0.1.0"
