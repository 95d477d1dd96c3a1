-- Raw usage: one row per request through the gateway, copied in batches from the
-- gateway.requests stream. Pruned after USAGE_RETENTION_DAYS; rollups are kept.
-- Only a BRIN index: ingestion stays cheap, and pruning and the quota rebuild read by time.
CREATE TABLE usage_logs (
    batch_id   uuid NOT NULL,                -- the RequestBatch event the row came in
    at         timestamptz NOT NULL,
    tenant_id  uuid,                         -- null: anonymous calls (login, register)
    request_id text NOT NULL,
    user_id    uuid,
    api_key_id uuid,
    method     text NOT NULL,
    route      text NOT NULL,
    status     smallint NOT NULL,
    latency_ms real NOT NULL,
    bytes_in   bigint NOT NULL,
    bytes_out  bigint NOT NULL,
    ip         inet,
    metered    boolean NOT NULL              -- the gateway counted it toward the monthly quota
);
CREATE INDEX usage_logs_at ON usage_logs USING brin (at);

-- Rollups, maintained in the transaction that stores the raw rows. The nil UUID stands for
-- "no API key" (a user's token) so the key can be part of the primary key.
CREATE TABLE usage_hourly (
    tenant_id      uuid NOT NULL,
    bucket         timestamptz NOT NULL,
    route          text NOT NULL,
    api_key_id     uuid NOT NULL,
    calls          bigint NOT NULL,
    metered_calls  bigint NOT NULL,          -- calls counted toward the monthly quota
    client_errors  bigint NOT NULL,
    server_errors  bigint NOT NULL,
    latency_ms_sum double precision NOT NULL,
    latency_ms_max real NOT NULL,
    bytes_in       bigint NOT NULL,
    bytes_out      bigint NOT NULL,
    PRIMARY KEY (tenant_id, bucket, route, api_key_id)
);
CREATE INDEX usage_hourly_bucket ON usage_hourly (bucket);

CREATE TABLE usage_daily (
    tenant_id      uuid NOT NULL,
    day            date NOT NULL,
    route          text NOT NULL,
    api_key_id     uuid NOT NULL,
    calls          bigint NOT NULL,
    metered_calls  bigint NOT NULL,          -- calls counted toward the monthly quota
    client_errors  bigint NOT NULL,
    server_errors  bigint NOT NULL,
    latency_ms_sum double precision NOT NULL,
    latency_ms_max real NOT NULL,
    bytes_in       bigint NOT NULL,
    bytes_out      bigint NOT NULL,
    PRIMARY KEY (tenant_id, day, route, api_key_id)
);

-- Calls per tenant per calendar month (UTC); the metered ones rebuild the quota counter.
CREATE TABLE usage_monthly (
    tenant_id     uuid NOT NULL,
    month         date NOT NULL,             -- first day of the month
    calls         bigint NOT NULL,
    metered_calls bigint NOT NULL,
    PRIMARY KEY (tenant_id, month)
);

-- Latest use of each API key; published to identity in batches (usage.api_keys.used).
CREATE TABLE api_key_usage (
    api_key_id   uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    last_used_at timestamptz NOT NULL,
    published_at timestamptz
);
CREATE INDEX api_key_usage_unpublished ON api_key_usage (api_key_id)
    WHERE published_at IS NULL OR published_at < last_used_at;

-- Heartbeats of the quota keeper, also written to Redis; a ring of recent ones lets it tell
-- how much Redis lost (see services/usage/quota.py).
CREATE TABLE quota_beats (
    slot    integer PRIMARY KEY,
    seen_ms bigint NOT NULL
);

-- Audit log: who did it to what, and the indexes of its filters (keyset order occurred_at, id).
ALTER TABLE audit_logs ADD COLUMN target_type text, ADD COLUMN target_id text;
DROP INDEX audit_logs_tenant_action;
CREATE INDEX audit_logs_tenant_action ON audit_logs (tenant_id, action, occurred_at DESC, id DESC);
CREATE INDEX audit_logs_tenant_actor ON audit_logs (tenant_id, actor_id, occurred_at DESC, id DESC);
