-- 004_recurrence: the successor of a completed recurring task.
--
-- The store op "task.recur" runs in three steps because the rule is
-- expanded in C (core/rrule.c): todod_task_recur_source reads what the
-- expansion needs, the core computes the next due date, and
-- todod_task_recur_create writes the successor and its event.
--
-- A series is counted from its start: the ORIGINAL due date of its first
-- task (or, without one, the moment it was completed).  Moving a later
-- task's due date by hand must not shift the series, and the first task
-- may have been deleted, so the start is kept here once it is known.

CREATE TABLE task_series (
    series_id bigint      PRIMARY KEY,
    -- start_at is occurrence number start_occurrence: 1, unless the series
    -- was first seen at a later task (one created with series_id and
    -- occurrence given), which then stands in for the start.
    start_at         timestamptz NOT NULL,
    start_occurrence integer     NOT NULL DEFAULT 1 CHECK (start_occurrence >= 1)
);

-- One successor per occurrence: completing, uncompleting and completing a
-- task again must not make a second one.
CREATE UNIQUE INDEX tasks_series_occurrence ON tasks (series_id, occurrence);

-- A repeated event is reported as such before anything else is checked,
-- so a redelivery after the task was deleted is still a harmless repeat.
CREATE FUNCTION todod_recur_check_once(p_consumer text, p_event text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_consumer IS NOT NULL AND p_event IS NOT NULL AND
       EXISTS (SELECT 1 FROM inbox WHERE consumer = p_consumer AND event_id = p_event) THEN
        PERFORM todod_fail('ALREADY_HANDLED', '',
            format('Event %s was already handled by %s.', p_event, p_consumer));
    END IF;
END
$$;

-- Step 1, read only.  Answers the rule and the series start as Unix
-- seconds, or {"skip": reason} when there is nothing to do: a task
-- completed and then reopened before its event arrived makes no successor
-- (completing it again sends another event).
CREATE FUNCTION todod_task_recur_source(p_user bigint, p_args jsonb, p_consumer text,
                                        p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tz text;
    t tasks;
    s task_series;
BEGIN
    PERFORM todod_recur_check_once(p_consumer, p_event);
    v_tz := todod_begin(p_user, p_args, ARRAY['id'], NULL, NULL);
    t := todod_task_find(p_user, p_args, false);
    IF t.rrule IS NULL THEN
        RETURN jsonb_build_object('skip', 'the task has no recurrence rule');
    END IF;
    IF t.completed_at IS NULL THEN
        RETURN jsonb_build_object('skip', 'the task is no longer completed');
    END IF;
    SELECT * INTO s FROM task_series WHERE series_id = t.series_id;
    IF NOT FOUND THEN
        -- The first task of the series, when it still exists, knows the
        -- start; otherwise this task stands in for it.
        SELECT f.due_at, 1 INTO s.start_at, s.start_occurrence
          FROM tasks f
         WHERE f.series_id = t.series_id AND f.occurrence = 1 AND f.due_at IS NOT NULL
           AND f.user_id = p_user;
        IF NOT FOUND THEN
            s.start_at := coalesce(t.due_at, t.completed_at);
            s.start_occurrence := t.occurrence;
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'id', t.id,
        'rrule', t.rrule,
        'tz', v_tz,
        'occurrence', t.occurrence,
        'start', floor(extract(epoch FROM s.start_at))::bigint,
        'start_occurrence', s.start_occurrence);
END
$$;

-- Step 2 (after the core computed the due date): p_args is {"id", "due"
-- (Unix seconds), "start", "start_occurrence"} - the last two as step 1
-- answered them, kept for the series' later tasks.  Takes the once-key
-- first, so a repeat changes nothing.  Copies the task as it is now.
-- Answers {"task": successor, "created": bool}; false when an earlier
-- completion of the same occurrence already made it.
CREATE FUNCTION todod_task_recur_create(p_user bigint, p_args jsonb, p_consumer text,
                                        p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t tasks;
    n tasks;
    v_task jsonb;
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['id', 'due', 'start', 'start_occurrence'],
                        p_consumer, p_event);
    t := todod_task_find(p_user, p_args, true);
    INSERT INTO task_series (series_id, start_at, start_occurrence)
    VALUES (t.series_id, to_timestamp(todod_arg_int(p_args, 'start')),
            todod_arg_int(p_args, 'start_occurrence'))
    ON CONFLICT (series_id) DO NOTHING;

    n.due_at := to_timestamp(todod_arg_int(p_args, 'due'));
    n.remind_at := n.due_at - make_interval(mins => t.remind_offset_min);
    -- A reminder already past (the task was completed late) would only
    -- go out at once for a date that is gone.
    n.reminder_state := CASE WHEN n.remind_at IS NULL THEN 'none'
                             WHEN n.remind_at <= now() THEN 'skipped'
                             ELSE 'pending' END;
    INSERT INTO tasks (user_id, title, description, priority, due_at, remind_at,
                       remind_offset_min, reminder_state, rrule, series_id, occurrence, category_id)
    VALUES (p_user, t.title, t.description, t.priority, n.due_at, n.remind_at,
            t.remind_offset_min, n.reminder_state, t.rrule, t.series_id, t.occurrence + 1,
            t.category_id)
    ON CONFLICT (series_id, occurrence) DO NOTHING
    RETURNING * INTO n;
    IF NOT FOUND THEN
        SELECT * INTO n FROM tasks WHERE series_id = t.series_id AND occurrence = t.occurrence + 1;
        RETURN jsonb_build_object('task', todod_task_json(n.id), 'created', false);
    END IF;
    INSERT INTO task_tags (task_id, tag_id) SELECT n.id, tag_id FROM task_tags WHERE task_id = t.id;
    v_task := todod_task_json(n.id);
    PERFORM todod_task_emit('task-events', 'todod.task.created', p_user, v_task);
    RETURN jsonb_build_object('task', v_task, 'created', true);
END
$$;
