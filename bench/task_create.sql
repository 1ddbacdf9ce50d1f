-- task_create.sql - pgbench script: the rows one task.create writes, as one
-- statement (one round trip, one transaction): the task (the columns
-- todod_task_create fills in) and its todod.task.created event with a
-- snapshot of the same shape.  The event is written as already sent, so
-- the relay of the todod under test leaves it alone and the baseline is
-- PostgreSQL's work alone.  Run with -D uid=<an existing user id>.
WITH id AS (SELECT nextval(pg_get_serial_sequence('tasks', 'id')) AS n),
     t AS (
    INSERT INTO tasks (id, user_id, title, description, priority, due_at, remind_at,
                       remind_offset_min, reminder_state, rrule, series_id, occurrence, category_id)
        OVERRIDING SYSTEM VALUE
        SELECT n, :uid, 'bench', NULL, 'medium', NULL, NULL, NULL, 'none', NULL, n, 1, NULL FROM id
        RETURNING id, created_at, updated_at)
INSERT INTO outbox (topic, type, subject, key, data, sent_at)
    SELECT 'task-events', 'todod.task.created', 'task/' || t.id, t.id::text,
           jsonb_build_object('user_id', :uid, 'task', jsonb_build_object(
               'id', t.id, 'title', 'bench', 'description', NULL, 'priority', 'medium',
               'status', 'pending', 'due_at', NULL, 'remind_at', NULL, 'reminder_state', 'none',
               'rrule', NULL, 'series_id', t.id, 'occurrence', 1, 'category', NULL,
               'tags', '[]'::jsonb, 'completed_at', NULL, 'created_at', t.created_at,
               'updated_at', t.updated_at)),
           now()
      FROM t;
