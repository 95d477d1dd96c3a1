-- Append-only audit log: one row per domain event, keyed by the event id.
CREATE TABLE audit_logs (
    id             uuid PRIMARY KEY,           -- the event id: a redelivery cannot add a row
    tenant_id      uuid,
    actor_kind     text NOT NULL,
    actor_id       text,
    action         text NOT NULL,
    correlation_id text,
    source_ip      inet,
    data           jsonb NOT NULL DEFAULT '{}',
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_tenant_time ON audit_logs (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX audit_logs_tenant_action ON audit_logs (tenant_id, action, occurred_at DESC);

-- Rows are never changed or removed, whoever asks (the owner included).
CREATE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only();

DO $$
BEGIN
    IF current_setting('catalytic.runtime_role', true) <> '' THEN
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_logs FROM %I',
                       current_setting('catalytic.runtime_role'));
    END IF;
END $$;
