"""Authentication: argon2 passwords, login sessions, API tokens, login throttling
and ``next=`` validation."""
