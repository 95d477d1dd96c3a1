-- Transactional outbox: events are written here in the same transaction as the state
-- change they describe; the relay publishes them to Redis Streams and marks them sent.
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    id           uuid NOT NULL UNIQUE,
    stream       text NOT NULL,
    type         text NOT NULL,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- One notification per transaction wakes the relay (NOTIFY collapses equal payloads).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Inbox: ids of events whose effects were committed; makes at-least-once delivery
-- exactly-once in effect. Keyed by consumer group so one schema may host several.
CREATE TABLE inbox (
    consumer_group text NOT NULL,
    event_id       uuid NOT NULL,
    type           text NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
