-- 001_events: the event plumbing every other table relies on.
--
-- outbox:       events written in the same transaction as the change they
--               describe; the relay hands them to the transport in id order
--               and sets sent_at only when the transport acknowledged them.
-- outbox_lease: one relay at a time (per database) keeps the order of one
--               task's events across replicas; a lease expires so a crashed
--               relay is replaced within seconds.
-- inbox:        the event ids each consumer has handled, so a redelivery has
--               no second effect.
-- dead_letters: events a consumer gave up on, with the reason.

CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    topic       text        NOT NULL,
    type        text        NOT NULL,
    subject     text,
    key         text        NOT NULL,
    data        jsonb       NOT NULL,
    traceparent text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_event_id ON outbox (event_id);
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

CREATE TABLE outbox_lease (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    owner      text,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO outbox_lease DEFAULT VALUES;

CREATE TABLE inbox (
    consumer   text        NOT NULL,
    event_id   text        NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer    text        NOT NULL,
    topic       text        NOT NULL,
    event_id    text        NOT NULL,
    event       text        NOT NULL,
    reason      text        NOT NULL,
    attempts    integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz
);

-- Every store function that changes a task calls this in its own
-- transaction, which is what makes the change and its event atomic.
CREATE FUNCTION todod_emit(p_topic text, p_type text, p_subject text, p_key text,
                           p_data jsonb) RETURNS uuid
LANGUAGE sql AS $$
    INSERT INTO outbox (topic, type, subject, key, data)
    VALUES (p_topic, p_type, p_subject, p_key, p_data)
    RETURNING event_id
$$;

-- Takes or renews the lease for p_owner, then returns the oldest unsent
-- events.  Nothing when another relay holds an unexpired lease.
CREATE FUNCTION todod_outbox_claim(p_owner text, p_lease_ms integer, p_limit integer)
RETURNS TABLE (id bigint, event_id uuid, topic text, type text, subject text, key text,
               created_at timestamptz, data jsonb, traceparent text)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE outbox_lease
       SET owner = p_owner,
           expires_at = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0)
     WHERE owner = p_owner OR expires_at < clock_timestamp();
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT o.id, o.event_id, o.topic, o.type, o.subject, o.key, o.created_at, o.data,
               o.traceparent
          FROM outbox o
         WHERE o.sent_at IS NULL
         ORDER BY o.id
         LIMIT p_limit;
END
$$;

-- Records that p_consumer handled p_event_id; false if it already had.
-- Store functions call it first when given a once-key, so the effect and
-- the inbox row commit together.
CREATE FUNCTION todod_inbox_take(p_consumer text, p_event_id text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_consumer IS NULL OR p_event_id IS NULL THEN
        RETURN true;
    END IF;
    INSERT INTO inbox (consumer, event_id) VALUES (p_consumer, p_event_id)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END
$$;
