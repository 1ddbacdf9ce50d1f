-- 011_relay_acks: sent_at is when the transport acknowledged the event,
-- and a claim that writes nothing else leaves the lease row alone.
--
-- Until now an acknowledged event was marked by the relay's next claim,
-- so every event cost two claims (one that fetched it, one that marked
-- it) and sent_at was the time of the second, a database round trip or
-- more after the broker's answer.  The relay now sends each event's
-- acknowledgement time with its id and lets the marks wait for a claim
-- that fetches anyway; what it sends is todod's clock, kept between the
-- event's creation and the database's now, so a skewed host cannot make
-- an event sent before it was written or after it was marked.
--
-- Every claim also wrote the lease row, about one row version per event
-- at a steady trickle.  A lease of the caller's with more than two thirds
-- of its time left is now only read: the relay renews it every third of
-- the lease while events are out, which writes it again before a third
-- is gone.

CREATE OR REPLACE FUNCTION todod_outbox_lease(p_owner text, p_lease_ms integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM outbox_lease
      WHERE owner = p_owner
        AND expires_at > clock_timestamp() + make_interval(secs => p_lease_ms / 1500.0);
    IF FOUND THEN
        RETURN true;
    END IF;
    UPDATE outbox_lease
       SET owner = p_owner,
           expires_at = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0)
     WHERE owner = p_owner OR expires_at < clock_timestamp();
    RETURN FOUND;
END
$$;

-- p_sent_us: microseconds since the epoch, one per p_sent id in the same
-- order; an id without one (a shorter or NULL array) is sent now.
CREATE FUNCTION todod_outbox_claim(p_owner text, p_lease_ms integer, p_limit integer,
                                   p_sent bigint[], p_in_flight bigint[], p_sent_us bigint[])
RETURNS TABLE (id bigint, event_id uuid, topic text, type text, subject text, key text,
               created_at timestamptz, data jsonb, traceparent text)
LANGUAGE plpgsql AS $$
BEGIN
    -- Acknowledged is acknowledged, whoever holds the lease by now.  The
    -- ANY finds the rows by primary key however many are unsent: joined
    -- to the unnest alone, a plan may read every unsent row.
    UPDATE outbox o
       SET sent_at = least(clock_timestamp(),
                           greatest(o.created_at,
                                    coalesce(to_timestamp(a.us / 1000000.0), clock_timestamp())))
      FROM unnest(p_sent, p_sent_us) AS a(id, us)
     WHERE o.id = ANY(p_sent) AND o.id = a.id AND o.sent_at IS NULL;
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

-- An older todod during a rolling upgrade: its events are sent now.
CREATE OR REPLACE FUNCTION todod_outbox_claim(p_owner text, p_lease_ms integer, p_limit integer,
                                              p_sent bigint[], p_in_flight bigint[])
RETURNS TABLE (id bigint, event_id uuid, topic text, type text, subject text, key text,
               created_at timestamptz, data jsonb, traceparent text)
LANGUAGE sql AS $$
    SELECT c.* FROM todod_outbox_claim(p_owner, p_lease_ms, p_limit, p_sent, p_in_flight,
                                       NULL::bigint[]) AS c;
$$;
