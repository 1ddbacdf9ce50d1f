-- 003_reminders: claiming due reminders.
--
-- Both operations are system operations: they ignore the user id and look
-- at every user's tasks.  A reminder is due when its task is pending
-- (reminder_state = 'pending', which completion and deletion end) and its
-- remind_at has passed.  Claiming marks it 'fired' and writes its
-- todod.reminder.due event in the same transaction, so of any number of
-- replicas claiming at once exactly one fires each reminder; SKIP LOCKED
-- lets them share a large batch instead of queueing behind each other.

-- A wall-clock time for a timer: RFC 3339 UTC with milliseconds, rounded
-- UP so that a timer armed for it never fires before the row is due (a
-- truncated time would wake the daemon a fraction too early, find nothing,
-- and have to wait again).
CREATE FUNCTION todod_reminder_ts(p_time timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(date_trunc('milliseconds', p_time + interval '999 microseconds')
                   AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The earliest pending reminder, due or not.  Reads
-- tasks_reminders_pending in order, so it stops at the first row of a
-- task still open.
CREATE FUNCTION todod_reminder_next_due(p_user bigint, p_args jsonb, p_consumer text,
                                        p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT todod_fields_ok(p_args, ARRAY[]::text[]) THEN
        PERFORM todod_check_fields(p_args, ARRAY[]::text[]);
    END IF;
    RETURN jsonb_build_object('next_due', todod_reminder_ts(
        (SELECT remind_at FROM tasks
          WHERE reminder_state = 'pending' AND completed_at IS NULL
          ORDER BY remind_at
          LIMIT 1)));
END
$$;

-- args {"limit": n (default 100), "grace_s": seconds (default 3600)}.
-- Claims up to `limit` due reminders, oldest first.  One older than the
-- grace period is marked 'skipped' without an event: after a long outage a
-- flood of stale reminders helps nobody.  The others become 'fired' and
-- each writes one todod.reminder.due event whose snapshot already shows
-- the new state.  Returns {"fired", "skipped", "next_due"}; a caller that
-- got fired + skipped = limit back should call again at once.
CREATE FUNCTION todod_reminder_claim_due(p_user bigint, p_args jsonb, p_consumer text,
                                         p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_limit bigint;
    v_grace bigint;
    v_fired integer;
    v_skipped integer;
    v_next timestamptz;
BEGIN
    IF p_consumer IS NOT NULL AND p_event IS NOT NULL THEN
        PERFORM todod_once(p_consumer, p_event);
    END IF;
    IF NOT todod_fields_ok(p_args, ARRAY['limit', 'grace_s']) THEN
        PERFORM todod_check_fields(p_args, ARRAY['limit', 'grace_s']);
    END IF;
    v_limit := coalesce(todod_arg_int(p_args, 'limit'), 100);
    v_grace := coalesce(todod_arg_int(p_args, 'grace_s'), 3600);
    IF v_limit NOT BETWEEN 1 AND 10000 THEN
        PERFORM todod_fail('INVALID_ARGUMENT', 'limit', '"limit" must lie between 1 and 10000.');
    END IF;
    IF v_grace < 0 THEN
        PERFORM todod_fail('INVALID_ARGUMENT', 'grace_s', '"grace_s" must not be negative.');
    END IF;

    -- One UPDATE claims the batch; RETURNING hands the changed rows to
    -- the event INSERT, which builds the snapshots set-wise (one join, not
    -- a function call per reminder).  The row image RETURNING gives is
    -- the new one, so the snapshot shows 'fired'.
    WITH due AS (
        SELECT id FROM tasks
         WHERE reminder_state = 'pending' AND remind_at <= now() AND completed_at IS NULL
         ORDER BY remind_at, id
         LIMIT v_limit
           FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE tasks t
           SET reminder_state = CASE WHEN t.remind_at < now() - make_interval(secs => v_grace)
                                     THEN 'skipped' ELSE 'fired' END
          FROM due
         WHERE t.id = due.id
        RETURNING t.*
    ), events AS (
        INSERT INTO outbox (topic, type, subject, key, data)
        SELECT 'task-reminders', 'todod.reminder.due', 'task/' || t.id, t.id::text,
               jsonb_build_object(
                   'user_id', t.user_id,
                   'task', todod_task_snapshot(
                       ROW(t.*)::tasks, c,
                       coalesce((SELECT jsonb_agg(g.name ORDER BY g.name COLLATE "C")
                                   FROM task_tags tt JOIN tags g ON g.id = tt.tag_id
                                  WHERE tt.task_id = t.id), '[]'::jsonb)),
                   'remind_at', todod_ts(t.remind_at))
          FROM claimed t LEFT JOIN categories c ON c.id = t.category_id
         WHERE t.reminder_state = 'fired'
         ORDER BY t.remind_at, t.id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM events),
           (SELECT count(*) FROM claimed WHERE reminder_state = 'skipped')
      INTO v_fired, v_skipped;

    -- Read after the UPDATE, so this transaction's own claims are gone.
    -- Rows another replica is claiming right now are skipped too: they
    -- are its business, and counting them would wake this replica for
    -- nothing while later reminders wait.  (Should that replica die
    -- before it commits, the safety scan finds them.)
    SELECT remind_at INTO v_next FROM tasks
     WHERE reminder_state = 'pending' AND completed_at IS NULL
     ORDER BY remind_at
     LIMIT 1
       FOR UPDATE SKIP LOCKED;
    RETURN jsonb_build_object('fired', v_fired, 'skipped', v_skipped,
                              'next_due', todod_reminder_ts(v_next));
END
$$;
