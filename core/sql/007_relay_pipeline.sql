-- 007_relay_pipeline: the relay claims while events are out.
--
-- With todod_outbox_claim (001) the relay asked for more only after every
-- event of its batch was acknowledged and then marked sent in a statement
-- of its own, so an event committed meanwhile waited for the slowest
-- acknowledgement of the batch and two more round trips.  The claim added
-- here also marks the acknowledged events sent and leaves out the events
-- still being published, so the relay keeps asking while events are out,
-- one statement per round.  The three-argument claim stays (lease renewal,
-- and an older todod during a rolling upgrade); both take the lease the
-- same way, in todod_outbox_lease.

CREATE FUNCTION todod_outbox_lease(p_owner text, p_lease_ms integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE outbox_lease
       SET owner = p_owner,
           expires_at = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0)
     WHERE owner = p_owner OR expires_at < clock_timestamp();
    RETURN FOUND;
END
$$;

CREATE FUNCTION todod_outbox_claim(p_owner text, p_lease_ms integer, p_limit integer,
                                   p_sent bigint[], p_in_flight bigint[])
RETURNS TABLE (id bigint, event_id uuid, topic text, type text, subject text, key text,
               created_at timestamptz, data jsonb, traceparent text)
LANGUAGE plpgsql AS $$
BEGIN
    -- Acknowledged is acknowledged, whoever holds the lease by now.
    UPDATE outbox o SET sent_at = clock_timestamp()
     WHERE o.id = ANY(p_sent) AND o.sent_at IS NULL;
    IF NOT todod_outbox_lease(p_owner, p_lease_ms) THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT o.id, o.event_id, o.topic, o.type, o.subject, o.key, o.created_at, o.data,
               o.traceparent
          FROM outbox o
         WHERE o.sent_at IS NULL AND o.id <> ALL(p_in_flight)
         ORDER BY o.id
         LIMIT p_limit;
END
$$;

CREATE OR REPLACE FUNCTION todod_outbox_claim(p_owner text, p_lease_ms integer, p_limit integer)
RETURNS TABLE (id bigint, event_id uuid, topic text, type text, subject text, key text,
               created_at timestamptz, data jsonb, traceparent text)
LANGUAGE sql AS $$
    SELECT c.* FROM todod_outbox_claim(p_owner, p_lease_ms, p_limit, '{}', '{}') AS c;
$$;
