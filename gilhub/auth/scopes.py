"""JupyterHub-style scopes: what a request may do.

Names, sub-scopes, roles and filters follow JupyterHub's ``scopes.py`` and
``roles.py`` (the subset gilhub implements, plus the repository's, the
bibliography's, the runs' and the activity's own scopes), so tokens requested by tools
written for JupyterHub mean the same here.

- A *raw* scope is what a token or role lists: ``servers``, ``read:users!user=alice``,
  ``access:servers!user`` (``!user`` alone: the token's owner), ``inherit``.
- *Expanding* resolves metascopes (``self``, ``inherit``), the bare ``!user`` filter
  and sub-scopes (``servers`` implies ``read:servers``, ``start:servers`` …).
- A :data:`Grants` maps each expanded scope to ``ALL`` or the set of user names it
  is limited to.

Browser sessions carry their owner's full scopes; a token carries the
intersection of its own scopes with its owner's *current* scopes, so a token can
never do more than its owner (and loses what its owner loses).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gilhub.users import User

ALL: Final = "*"
#: expanded scope -> ALL, or the names of the users it is limited to
Grants = dict[str, "str | frozenset[str]"]


@dataclass(frozen=True)
class Identity:
    """Who is asking: a user, and the raw scopes of the token they presented
    (``None`` for a browser session, which carries all its owner's scopes)."""

    user: User
    token_scopes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ScopeDefinition:
    description: str
    subscopes: tuple[str, ...] = ()


SCOPES: dict[str, ScopeDefinition] = {
    "inherit": ScopeDefinition("Everything the token's owner can do."),
    "self": ScopeDefinition("The user's own resources (their model, server and tokens)."),
    "admin-ui": ScopeDefinition("Use the administration page."),
    "admin:users": ScopeDefinition(
        "Read, change, create and delete users (amounts to administrator rights).",
        ("users", "delete:users"),
    ),
    "users": ScopeDefinition(
        "Read user models and record users' activity.",
        ("read:users", "list:users", "users:activity"),
    ),
    "delete:users": ScopeDefinition("Delete users."),
    "list:users": ScopeDefinition("List users.", ("read:users:name",)),
    "read:users": ScopeDefinition(
        "Read user models (with the URL of a running server).",
        ("read:users:name", "read:users:activity"),
    ),
    "read:users:name": ScopeDefinition("Read users' names."),
    "read:users:activity": ScopeDefinition("Read the time of users' last activity."),
    "users:activity": ScopeDefinition("Record users' activity.", ("read:users:activity",)),
    "admin:servers": ScopeDefinition("Read, start and stop any server.", ("servers",)),
    "servers": ScopeDefinition(
        "Start and stop servers.", ("read:servers", "start:servers", "delete:servers")
    ),
    "read:servers": ScopeDefinition("Read server models.", ("read:users:name",)),
    "start:servers": ScopeDefinition("Start servers."),
    "delete:servers": ScopeDefinition("Stop servers."),
    "access:servers": ScopeDefinition("Use servers through the hub's proxy (API or browser)."),
    "tokens": ScopeDefinition(
        "Read, create and delete API tokens (a token made with it may do all its owner can).",
        ("read:tokens",),
    ),
    "read:tokens": ScopeDefinition("Read API tokens' descriptions (never the tokens)."),
    "read:hub": ScopeDefinition("Read details about the hub (/hub/api/info)."),
    # gilhub's own parts
    "admin:repo": ScopeDefinition("Restore deleted repository entries.", ("repo",)),
    "repo": ScopeDefinition(
        "Push, pull, label and merge in the shared repository.", ("read:repo",)
    ),
    "read:repo": ScopeDefinition("Browse, read and search the shared repository."),
    "bib": ScopeDefinition("Change the lab's bibliography.", ("read:bib",)),
    "read:bib": ScopeDefinition("Read the lab's bibliography."),
    "runs": ScopeDefinition("Start and cancel runs of one's notebooks.", ("read:runs",)),
    "read:runs": ScopeDefinition("Read one's runs, their progress and outputs."),
    "activity": ScopeDefinition(
        "Switch one's activity recording on or off and delete one's record.",
        ("read:activity",),
    ),
    "read:activity": ScopeDefinition("Read one's activity record and its narratives."),
}

#: Scopes that ``self`` stands for, each limited to the user (JupyterHub's list, less
#: what gilhub lacks, plus ``list:users``: a user's listing shows themselves).
_SELF_SCOPES = (
    "read:users",
    "list:users",
    "users:activity",
    "servers",
    "access:servers",
    "tokens",
)

#: JupyterHub's default roles (``server`` is limited to the default server here).
ROLES: dict[str, tuple[str, ...]] = {
    "user": ("self", "repo", "bib", "runs", "activity"),
    "admin": ("admin-ui", "admin:users", "admin:servers", "tokens", "read:hub", "admin:repo"),
    "server": ("users:activity!user", "access:servers!user"),
    "token": ("inherit",),
}


class ScopeError(ValueError):
    """An unknown scope, filter or role, or one the owner does not hold."""


def check_scopes_exist(raw_scopes: Iterable[str]) -> None:
    for raw in raw_scopes:
        base, bang, filter_ = raw.partition("!")
        if base not in SCOPES:
            raise ScopeError(f"Scope '{raw}' does not exist.")
        if bang and not (filter_ == "user" or _filtered_user(filter_)):
            raise ScopeError(
                f"Scope filter '!{filter_}' in '{raw}' does not exist: gilhub knows "
                "'!user' (the token's owner) and '!user=NAME'."
            )


def scopes_for_roles(role_names: Iterable[str]) -> list[str]:
    raw: list[str] = []
    for name in role_names:
        if name not in ROLES:
            raise ScopeError(f"No such role: {name}.")
        raw.extend(ROLES[name])
    return raw


def owner_scopes(user: User, admin_access: bool) -> Grants:
    """Everything ``user`` may do: the ``user`` role, and ``admin`` for administrators
    (using other people's servers too when the hub allows admin access).

    Like :func:`request_grants`, computed once per name and rights and then shared:
    callers never change what they get.
    """
    return _owner_scopes(user.name, user.is_admin, admin_access)


def request_grants(identity: Identity, admin_access: bool) -> Grants:
    """What a request by ``identity`` may do: its owner's scopes, narrowed to its token's.

    Every proxied request asks, so the answer is remembered per name, admin rights and
    token scopes: a change of any of them (a role change, a rename) is another key, so
    nothing needs forgetting, and what no request asks for any more ages out.
    """
    user = identity.user
    return _request_grants(identity.token_scopes, user.name, user.is_admin, admin_access)


@functools.lru_cache(maxsize=1024)
def _owner_scopes(name: str, is_admin: bool, admin_access: bool) -> Grants:
    raw = list(ROLES["user"])
    if is_admin:
        raw += ROLES["admin"]
        if admin_access:
            raw.append("access:servers")
    return expand(raw, name)


@functools.lru_cache(maxsize=4096)
def _request_grants(
    raw_scopes: tuple[str, ...] | None, name: str, is_admin: bool, admin_access: bool
) -> Grants:
    owner = _owner_scopes(name, is_admin, admin_access)
    return owner if raw_scopes is None else token_scopes(raw_scopes, owner, name)


def token_scopes(raw_scopes: Iterable[str], owner: Grants, owner_name: str) -> Grants:
    """What a token with ``raw_scopes`` may do: its expansion within its owner's grants."""
    raw = list(raw_scopes)
    if "inherit" in raw:
        return owner
    return intersect(expand(raw, owner_name), owner)


def excess_scopes(raw_scopes: Iterable[str], owner: Grants, owner_name: str) -> list[str]:
    """The expanded scopes in ``raw_scopes`` that the owner does not hold (empty: fine)."""
    raw = [scope for scope in raw_scopes if scope != "inherit"]
    wanted = expand(raw, owner_name)
    return sorted(flatten(difference(wanted, intersect(wanted, owner))))


def expand(raw_scopes: Iterable[str], owner_name: str) -> Grants:
    grants: Grants = {}
    for raw in raw_scopes:
        base, bang, filter_ = raw.partition("!")
        users: str | frozenset[str] = ALL
        if bang:
            users = frozenset({owner_name if filter_ == "user" else _filtered_user(filter_)})
        if base == "self":
            grants = union(grants, expand((f"{s}!user" for s in _SELF_SCOPES), owner_name))
            continue
        for scope in _with_subscopes(base):
            grants = union(grants, {scope: users})
    return grants


def allows(grants: Grants, scope: str, user_name: str | None = None) -> bool:
    """Whether ``grants`` hold ``scope`` (for ``user_name``, when the action is on a user)."""
    users = grants.get(scope)
    if users is None:
        return False
    return users == ALL or (user_name is not None and user_name in users)


def union(a: Grants, b: Grants) -> Grants:
    merged = dict(a)
    for scope, users in b.items():
        present = merged.get(scope)
        if present is None:
            merged[scope] = users
        elif present == ALL or users == ALL:
            merged[scope] = ALL
        else:
            merged[scope] = frozenset(present) | users  # type: ignore[operator]
    return merged


def intersect(a: Grants, b: Grants) -> Grants:
    common: Grants = {}
    for scope in a.keys() & b.keys():
        users_a, users_b = a[scope], b[scope]
        if users_a == ALL:
            common[scope] = users_b
        elif users_b == ALL:
            common[scope] = users_a
        elif shared := frozenset(users_a) & frozenset(users_b):
            common[scope] = shared
    return common


def difference(a: Grants, b: Grants) -> Grants:
    """What ``a`` grants beyond ``b`` (``b`` being a part of ``a``)."""
    rest: Grants = {}
    for scope, users in a.items():
        held = b.get(scope)
        if held is None:
            rest[scope] = users
        elif users != ALL and held != ALL and (extra := frozenset(users) - frozenset(held)):
            rest[scope] = extra
        elif users == ALL and held != ALL:
            rest[scope] = ALL
    return rest


def flatten(grants: Grants) -> list[str]:
    """Expanded scopes as strings, e.g. ``["read:hub", "servers!user=alice"]``."""
    listed = []
    for scope, users in grants.items():
        if users == ALL:
            listed.append(scope)
        else:
            listed += [f"{scope}!user={name}" for name in sorted(users)]
    return sorted(listed)


def _filtered_user(filter_: str) -> str | None:
    kind, equals, name = filter_.partition("=")
    return name if kind == "user" and equals and name else None


def _with_subscopes(scope: str) -> set[str]:
    found = {scope}
    for sub in SCOPES[scope].subscopes:
        found |= _with_subscopes(sub)
    return found


def scopes_for_new_token(
    owner: User,
    admin_access: bool,
    scopes: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
) -> tuple[str, ...]:
    """The raw scopes to store on a new token of ``owner``, from the scopes *or* roles asked
    for (neither: ``inherit``), as JupyterHub decides them: unknown scopes, filters and roles,
    and anything the owner does not hold, are refused with :class:`ScopeError`."""
    if scopes is not None and roles is not None:
        raise ScopeError("Ask for scopes or for roles, not both.")
    raw = list(scopes) if scopes is not None else ["inherit"]
    if roles is not None:
        raw = scopes_for_roles(roles)
    check_scopes_exist(raw)
    excess = excess_scopes(raw, owner_scopes(owner, admin_access), owner.name)
    if excess:
        raise ScopeError(
            f"Not assigning requested scopes {', '.join(excess)} not held by user {owner.name}."
        )
    return tuple(raw)
