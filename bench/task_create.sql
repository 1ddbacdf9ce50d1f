-- task_create.sql - pgbench script: the rows one task.create writes, in one
-- transaction (the task, then its todod.task.created event in the outbox).
-- Run with -D uid=<an existing user id>.
BEGIN;
INSERT INTO tasks (user_id, title, priority)
     VALUES (:uid, 'bench', 'medium')
  RETURNING id AS task_id \gset
INSERT INTO outbox (topic, type, subject, key, data)
     VALUES ('task-events', 'todod.task.created', 'task/' || :task_id, :task_id,
             jsonb_build_object('user_id', :uid,
                                'task', jsonb_build_object('id', :task_id, 'title', 'bench',
                                                           'priority', 'medium')));
COMMIT;
