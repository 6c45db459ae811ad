-- Hub state: people, login sessions, API tokens and their servers.
-- Tables here are owned by the hub's role and granted to no one else:
-- user servers (which log in with their own per-user role) cannot read them.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE
                  CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    is_admin      boolean NOT NULL DEFAULT false,
    password_hash text,
    -- The PostgreSQL role this user's server logs in with (see 002_contents.sql).
    db_role       text UNIQUE,
    created       timestamptz NOT NULL DEFAULT now(),
    last_activity timestamptz
);

CREATE TABLE login_sessions (
    -- sha256 of the random session id carried in the signed cookie
    id_hash    text PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created    timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    expires    timestamptz NOT NULL
);
CREATE INDEX login_sessions_user ON login_sessions (user_id);

CREATE TABLE api_tokens (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- sha256 of the token; the token itself is shown once and never stored
    token_hash text NOT NULL UNIQUE,
    prefix     text NOT NULL,
    note       text NOT NULL DEFAULT '',
    scopes     text[] NOT NULL DEFAULT ARRAY['inherit'],
    created    timestamptz NOT NULL DEFAULT now(),
    last_used  timestamptz,
    expires    timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE login_failures (
    -- throttling of failed logins, per user name and per client address
    key        text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key ON login_failures (key, failed_at);

CREATE TABLE servers (
    user_id       bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- 'starting', 'running', 'stopping'; no row means stopped
    state         text NOT NULL,
    host          text NOT NULL DEFAULT '127.0.0.1',
    port          integer,
    pid           integer,
    -- sha256 of the server's token (the token is derived from the hub secret
    -- and token_nonce, so a restarted hub can recompute it)
    token_hash    text,
    token_nonce   text,
    spawner_state jsonb NOT NULL DEFAULT '{}'::jsonb,
    started       timestamptz NOT NULL DEFAULT now(),
    last_activity timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hub_secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
