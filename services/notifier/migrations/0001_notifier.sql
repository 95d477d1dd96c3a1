-- Contacts: the notifier's own projection of identity events (never identity's schema).
CREATE TABLE tenants (
    tenant_id     uuid PRIMARY KEY,
    name          text NOT NULL DEFAULT '',
    owner_user_id uuid,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    email      text NOT NULL,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    first_name text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

-- One row per (event, template, recipient): the unique key makes a redelivered event a no-op.
-- `message` is the rendered MIME message sealed with the secrets key (it may carry a reset
-- link); it is wiped once the email is final.
CREATE TABLE emails (
    id                uuid PRIMARY KEY,
    tenant_id         uuid,
    source_event_id   uuid NOT NULL,
    source_event_type text NOT NULL,
    template          text NOT NULL,
    recipient         text NOT NULL,
    subject           text NOT NULL,
    message           text,
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'sent', 'failed', 'suppressed')),
    attempts          integer NOT NULL DEFAULT 0,
    last_code         integer,
    last_error        text,
    enqueued_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    CONSTRAINT emails_once UNIQUE (source_event_id, template, recipient)
);
CREATE INDEX emails_to_enqueue ON emails (created_at) WHERE status = 'queued';
CREATE INDEX emails_tenant ON emails (tenant_id, created_at DESC);
CREATE INDEX emails_created ON emails (created_at);

CREATE TABLE email_attempts (
    email_id    uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('sent', 'transient', 'permanent')),
    smtp_code   integer,
    detail      text NOT NULL DEFAULT '',
    duration_ms real NOT NULL DEFAULT 0,
    PRIMARY KEY (email_id, attempt)
);

-- Hard-bounced addresses: nothing is sent to them again.
CREATE TABLE suppressions (
    address         text PRIMARY KEY,
    reason          text NOT NULL,
    smtp_code       integer,
    detail          text NOT NULL DEFAULT '',
    source_email_id uuid,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Tenant webhook endpoints. Secrets are sealed with the secrets key; during a rotation the
-- previous one stays valid (and is signed with) until previous_secret_expires_at.
CREATE TABLE webhooks (
    id                         uuid PRIMARY KEY,
    tenant_id                  uuid NOT NULL,
    url                        text NOT NULL,
    description                text NOT NULL DEFAULT '',
    event_types                text[],
    enabled                    boolean NOT NULL DEFAULT true,
    disabled_reason            text,
    disabled_at                timestamptz,
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    failing_since              timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at);

-- One delivery per (endpoint, event); `attempts` counts scheduled attempts and drives the
-- retry schedule; `enqueued_attempt` is the attempt a job was last queued for.
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    endpoint_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    payload          bytea NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    enqueued_attempt integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    CONSTRAINT webhook_deliveries_once UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);

CREATE TABLE webhook_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    at            timestamptz NOT NULL DEFAULT now(),
    status_code   integer,
    response_body text NOT NULL DEFAULT '',
    error         text,
    duration_ms   real NOT NULL DEFAULT 0
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- New work wakes the dispatcher, which enqueues its arq jobs (a poll covers a lost notice).
CREATE FUNCTION notifier_dispatch_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_dispatch', '');
    RETURN NULL;
END $$;
CREATE TRIGGER emails_dispatch AFTER INSERT ON emails
    FOR EACH STATEMENT EXECUTE FUNCTION notifier_dispatch_notify();
CREATE TRIGGER webhook_deliveries_dispatch AFTER INSERT ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notifier_dispatch_notify();
