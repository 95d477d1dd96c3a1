-- The bus benchmark's handler writes one row per event here, in the consumer's transaction:
-- the kind of effect a real handler has (a keyed insert), on top of the inbox row.
CREATE TABLE effect (
    event_id    uuid PRIMARY KEY,
    tenant_id   uuid,
    note        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
