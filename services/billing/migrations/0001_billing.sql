-- Billing state: Stripe customers, subscriptions and invoices as last read from Stripe, the
-- Stripe events received (stored once, processed by the worker), checkout sessions opened,
-- overage reports sent, and the tenant contacts projected from identity's events.

-- One Stripe customer per tenant, created on first need.
CREATE TABLE customers (
    tenant_id          uuid PRIMARY KEY,
    stripe_customer_id text NOT NULL UNIQUE,
    email              text,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- Stripe's truth about each subscription, as of the last sync (Stripe is re-read on every event).
CREATE TABLE subscriptions (
    stripe_subscription_id text PRIMARY KEY,
    tenant_id              uuid NOT NULL,
    stripe_customer_id     text NOT NULL,
    plan                   text NOT NULL,
    price_id               text,
    status                 text NOT NULL,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    canceled_at            timestamptz,
    trial_end              timestamptz,
    stripe_created_at      timestamptz NOT NULL,
    synced_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, stripe_created_at DESC);

-- Checkout sessions opened for a tenant; `seq` numbers a tenant's attempts at one plan and
-- makes the Stripe idempotency key of the next attempt (a retry reuses the same number).
CREATE TABLE checkout_sessions (
    id                 text PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    plan               text NOT NULL,
    seq                integer NOT NULL,
    url                text NOT NULL,
    status             text NOT NULL DEFAULT 'open',
    expires_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz,
    UNIQUE (tenant_id, plan, seq)
);

CREATE TABLE invoices (
    id                     text PRIMARY KEY,
    tenant_id              uuid NOT NULL,
    stripe_subscription_id text,
    status                 text NOT NULL,
    number                 text,
    currency               text NOT NULL,
    amount_due             bigint NOT NULL,
    amount_paid            bigint NOT NULL,
    attempt_count          integer NOT NULL DEFAULT 0,
    next_payment_attempt   timestamptz,
    hosted_invoice_url     text,
    invoice_pdf            text,
    period_start           timestamptz,
    period_end             timestamptz,
    stripe_created_at      timestamptz NOT NULL,
    synced_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_tenant ON invoices (tenant_id, stripe_created_at DESC, id DESC);

-- What was announced on the stream for an object, so each fact is announced once however
-- often and in whatever order Stripe tells it (payment succeeded/failed per attempt, trial end).
CREATE TABLE notices (
    kind       text NOT NULL,
    ref        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, ref)
);

-- Every verified Stripe event, stored once by its id in the webhook's transaction and
-- processed by the worker (retried with backoff until processed, ignored or failed).
CREATE TABLE stripe_events (
    id              text PRIMARY KEY,
    type            text NOT NULL,
    livemode        boolean NOT NULL DEFAULT false,
    stripe_created  timestamptz NOT NULL,
    payload         bytea NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processed', 'ignored', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    processed_at    timestamptz
);
CREATE INDEX stripe_events_due ON stripe_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX stripe_events_done ON stripe_events (processed_at) WHERE status <> 'pending';

CREATE FUNCTION stripe_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_stripe_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER stripe_events_notify AFTER INSERT ON stripe_events
    FOR EACH STATEMENT EXECUTE FUNCTION stripe_events_notify();

-- Usage beyond the plan reported to Stripe per tenant and month. A report is written here
-- (pending) before it is sent and acknowledged after, so a crash in between resends the same
-- identifier instead of counting the calls twice.
CREATE TABLE overage_reports (
    tenant_id          uuid NOT NULL,
    month              text NOT NULL,
    stripe_customer_id text NOT NULL,
    reported_units     bigint NOT NULL DEFAULT 0,
    pending_units      bigint,
    pending_identifier text,
    pending_timestamp  bigint,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, month)
);

-- Projection of identity's events: who to name on a tenant's Stripe customer.
CREATE TABLE tenants (
    tenant_id     uuid PRIMARY KEY,
    name          text NOT NULL DEFAULT '',
    owner_user_id uuid,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_users (
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    email      text NOT NULL,
    role       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
