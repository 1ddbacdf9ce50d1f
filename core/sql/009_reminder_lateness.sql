-- 009_reminder_lateness: claiming due reminders also says how late each
-- one fired, for the reminders plugin's lateness histogram.
--
-- As in 003, plus "late_s": the seconds from each fired reminder's
-- remind_at to its claim (now(), the transaction's start), oldest first.
-- Only the claim knows which rows it took, so it is the one to say; the
-- array holds at most `limit` numbers.
CREATE OR REPLACE FUNCTION todod_reminder_claim_due(p_user bigint, p_args jsonb,
                                                    p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_limit bigint;
    v_grace bigint;
    v_fired integer;
    v_skipped integer;
    v_late jsonb;
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
           (SELECT count(*) FROM claimed WHERE reminder_state = 'skipped'),
           (SELECT coalesce(jsonb_agg(extract(epoch FROM now() - remind_at)
                                      ORDER BY remind_at), '[]'::jsonb)
              FROM claimed WHERE reminder_state = 'fired')
      INTO v_fired, v_skipped, v_late;

    SELECT remind_at INTO v_next FROM tasks
     WHERE reminder_state = 'pending' AND completed_at IS NULL
     ORDER BY remind_at
     LIMIT 1
       FOR UPDATE SKIP LOCKED;
    RETURN jsonb_build_object('fired', v_fired, 'skipped', v_skipped, 'late_s', v_late,
                              'next_due', todod_reminder_ts(v_next));
END
$$;
