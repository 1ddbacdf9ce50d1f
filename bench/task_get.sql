-- task_get.sql - pgbench script: what one task.get reads, as one prepared
-- statement (run with -M prepared): the task by its primary key, checked
-- against its owner, with its category and its tag names.  The baseline
-- for tools/call get_task; PostgreSQL's work alone, without the JSON that
-- todod builds from the same row.  Run with -D uid=<the owner> -D id=<a task>.
SELECT t.id, t.title, t.description, t.priority, t.due_at, t.remind_at, t.reminder_state,
       t.rrule, t.series_id, t.occurrence, t.completed_at, t.created_at, t.updated_at,
       c.id, c.name, c.color,
       (SELECT array_agg(g.name ORDER BY g.name COLLATE "C")
          FROM task_tags tt JOIN tags g ON g.id = tt.tag_id
         WHERE tt.task_id = t.id)
  FROM tasks t LEFT JOIN categories c ON c.id = t.category_id
 WHERE t.id = :id AND t.user_id = :uid;
