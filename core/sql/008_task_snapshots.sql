-- 008_task_snapshots: a task's snapshot as a view, so that reading one
-- task can be a single plain statement.
--
-- todod_task_get is PL/pgSQL: the owner's time zone, the argument check,
-- the row and its snapshot each cost a query inside it, about twice what
-- the read itself costs.  The store answers a well-formed get from this
-- view in one prepared statement, and calls todod_task_get only when the
-- view has no such task of that user, so every refusal keeps its code.
-- A view is expanded into the statement that reads it, so the plan is
-- made once per prepared statement, never once per call.
CREATE VIEW task_snapshots AS
SELECT t.id, t.user_id,
       todod_task_snapshot(t, c,
           coalesce((SELECT jsonb_agg(g.name ORDER BY g.name COLLATE "C")
                       FROM task_tags tt JOIN tags g ON g.id = tt.tag_id
                      WHERE tt.task_id = t.id), '[]'::jsonb)) AS task
  FROM tasks t LEFT JOIN categories c ON c.id = t.category_id;

-- One definition of a snapshot: the functions that change a task read
-- it back from the view too.
CREATE OR REPLACE FUNCTION todod_task_json(p_task bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT task FROM task_snapshots WHERE id = p_task);
END
$$;
