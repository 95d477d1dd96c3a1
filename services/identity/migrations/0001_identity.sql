-- Tenants, their users, sessions, one-time tokens, invitations and API keys.
-- Secrets never appear here: passwords as argon2id, every token and key secret as SHA-256.
CREATE TABLE tenants (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    plan            text NOT NULL DEFAULT 'free',
    plan_changed_at timestamptz,                 -- occurred_at of the billing event that set it
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email             text NOT NULL,             -- normalized (lower case, ASCII)
    password_hash     text NOT NULL,
    first_name        text,
    last_name         text,
    role              text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    email_verified_at timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- Login is by email alone, so an email belongs to one account platform-wide.
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_tenant ON users (tenant_id, created_at);

-- Refresh tokens: one row per issued token; a family is one login, rotated on every use.
CREATE TABLE refresh_tokens (
    id                uuid PRIMARY KEY,
    family_id         uuid NOT NULL,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash        text NOT NULL UNIQUE,
    access_jti        text NOT NULL,             -- the access token issued with it (logout)
    access_expires_at timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    family_expires_at timestamptz NOT NULL,      -- absolute end of the login
    created_ip        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    rotated_at        timestamptz,               -- used once; a second use is theft
    revoked_at        timestamptz,
    revoke_reason     text
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_jti ON refresh_tokens (access_jti);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Single-use tokens sent by email: password reset and email verification.
CREATE TABLE one_time_tokens (
    id         uuid PRIMARY KEY,
    purpose    text NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX one_time_tokens_expires ON one_time_tokens (expires_at);

CREATE TABLE invitations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash  text NOT NULL UNIQUE,
    invited_by  uuid,
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX invitations_pending ON invitations (tenant_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invitations_expires ON invitations (expires_at);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    env          text NOT NULL CHECK (env IN ('live', 'test')),
    prefix       text NOT NULL UNIQUE,
    secret_hash  text NOT NULL,
    scopes       text[] NOT NULL DEFAULT '{}',
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoked_by   text
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at) WHERE revoked_at IS NULL;
