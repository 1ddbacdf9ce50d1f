-- task_create.sql - pgbench script: the rows one task.create writes, in one
-- transaction: the task (same columns as todod_task_create fills in) and
-- its todod.task.created event in the outbox, with a snapshot of the same
-- shape.  Run with -D uid=<an existing user id>.
BEGIN;
SELECT nextval(pg_get_serial_sequence('tasks', 'id')) AS task_id \gset
INSERT INTO tasks (id, user_id, title, description, priority, due_at, remind_at,
                   remind_offset_min, reminder_state, rrule, series_id, occurrence, category_id)
    OVERRIDING SYSTEM VALUE
    VALUES (:task_id, :uid, 'bench', NULL, 'medium', NULL, NULL,
            NULL, 'none', NULL, :task_id, 1, NULL);
INSERT INTO outbox (topic, type, subject, key, data)
    VALUES ('task-events', 'todod.task.created', 'task/' || :task_id, :task_id,
            jsonb_build_object('user_id', :uid, 'task', jsonb_build_object(
                'id', :task_id, 'title', 'bench', 'description', NULL, 'priority', 'medium',
                'status', 'pending', 'due_at', NULL, 'remind_at', NULL, 'reminder_state', 'none',
                'rrule', NULL, 'series_id', :task_id, 'occurrence', 1, 'category', NULL,
                'tags', '[]'::jsonb, 'completed_at', NULL, 'created_at', now(),
                'updated_at', now())));
COMMIT;
