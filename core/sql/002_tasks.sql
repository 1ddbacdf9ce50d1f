-- 002_tasks: users, their tasks, categories and tags, and the operations
-- the daemon performs on them.
--
-- Every store operation is one function call, hence one statement, one
-- transaction and one round trip: a change and the events describing it
-- commit together or not at all.  All of them share one signature,
--     todod_<op>(user_id bigint, args jsonb, once_consumer text, once_event_id text)
-- and return jsonb.  Business errors are raised with SQLSTATE TD001:
-- MESSAGE is a stable code, DETAIL the offending field ('' for none),
-- HINT a sentence for humans.  Another user's rows are invisible: every
-- lookup is scoped by user_id, so they fail exactly like missing ones.

-- ---- helpers ---------------------------------------------------------------

CREATE FUNCTION todod_fail(p_code text, p_field text, p_hint text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TD001', MESSAGE = p_code,
        DETAIL = coalesce(p_field, ''), HINT = p_hint;
END
$$;

-- RFC 3339 in UTC, whole seconds: what every snapshot carries.
CREATE FUNCTION todod_ts(p_time timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

CREATE FUNCTION todod_priority_rank(p_priority text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END
$$;

-- ---- tables ----------------------------------------------------------------

CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    email      text,
    tz         text        NOT NULL DEFAULT 'UTC',
    token_hash bytea       UNIQUE CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A CHECK may not read other tables, and pg_timezone_names is a view.
CREATE FUNCTION todod_users_check_tz() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = NEW.tz) THEN
        PERFORM todod_fail('INVALID_TIMEZONE', 'tz',
            format('"%s" is not a time zone name such as Europe/Berlin or UTC.', NEW.tz));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_check_tz BEFORE INSERT OR UPDATE OF tz ON users
    FOR EACH ROW EXECUTE FUNCTION todod_users_check_tz();

CREATE TABLE categories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    color      text        CHECK (color ~ '^#[0-9A-Fa-f]{6}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);

CREATE TABLE tags (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 30),
    color      text        CHECK (color ~ '^#[0-9A-Fa-f]{6}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);

CREATE TABLE tasks (
    -- Named, so todod_task_create can draw ids from it without a lookup.
    id                bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME tasks_id_seq) PRIMARY KEY,
    user_id           bigint      NOT NULL REFERENCES users ON DELETE CASCADE,
    title             text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description       text        CHECK (length(description) <= 10000),
    priority          text        NOT NULL DEFAULT 'medium'
                                  CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    due_at            timestamptz,
    remind_at         timestamptz,
    -- Set when the reminder was asked for as "N minutes before due", so
    -- moving due_at moves the reminder with it.
    remind_offset_min integer     CHECK (remind_offset_min >= 0),
    reminder_state    text        NOT NULL DEFAULT 'none'
                                  CHECK (reminder_state IN ('none', 'pending', 'fired', 'skipped')),
    rrule             text,
    series_id         bigint,
    occurrence        integer     NOT NULL DEFAULT 1,
    category_id       bigint      REFERENCES categories ON DELETE SET NULL,
    completed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    search            tsvector    GENERATED ALWAYS AS (
                          setweight(to_tsvector('simple', title), 'A') ||
                          setweight(to_tsvector('simple', coalesce(description, '')), 'B')) STORED
);
CREATE INDEX tasks_search ON tasks USING gin (search);
-- The orders task.list pages through (see todod_task_page), each split
-- by status so the default, pending, does not step over finished tasks;
-- and search without words, which goes by id.
CREATE INDEX tasks_pending_created ON tasks (user_id, created_at, id) WHERE completed_at IS NULL;
CREATE INDEX tasks_done_created ON tasks (user_id, created_at, id) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_pending_due ON tasks (user_id, coalesce(due_at, 'infinity'), id)
    WHERE completed_at IS NULL;
CREATE INDEX tasks_done_due ON tasks (user_id, coalesce(due_at, 'infinity'), id)
    WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_pending_priority ON tasks (user_id, (todod_priority_rank(priority)::float8), id)
    WHERE completed_at IS NULL;
CREATE INDEX tasks_done_priority ON tasks (user_id, (todod_priority_rank(priority)::float8), id)
    WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_user ON tasks (user_id, id);
CREATE INDEX tasks_category ON tasks (category_id);
-- What the reminder scan reads.
CREATE INDEX tasks_reminders_pending ON tasks (remind_at) WHERE reminder_state = 'pending';

CREATE TABLE task_tags (
    task_id bigint NOT NULL REFERENCES tasks ON DELETE CASCADE,
    tag_id  bigint NOT NULL REFERENCES tags ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);
CREATE INDEX task_tags_tag ON task_tags (tag_id);

-- ---- arguments ----------------------------------------------------------------

-- Marks the call handled for a once-key; a repeat fails ALREADY_HANDLED.
CREATE FUNCTION todod_once(p_consumer text, p_event text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT todod_inbox_take(p_consumer, p_event) THEN
        PERFORM todod_fail('ALREADY_HANDLED', '',
            format('Event %s was already handled by %s.', p_event, p_consumer));
    END IF;
END
$$;

-- What every operation does first: marks the call handled for a once-key
-- (first, so a repeat changes nothing), checks that the user exists and
-- that p_args names only p_fields, in that order.  Returns the user's
-- time zone.
CREATE FUNCTION todod_begin(p_user bigint, p_args jsonb, p_fields text[],
                            p_consumer text, p_event text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_tz text;
BEGIN
    -- Without both parts of a once-key todod_once does nothing, and
    -- PERFORM costs a query, so the common case skips it.
    IF p_consumer IS NOT NULL AND p_event IS NOT NULL THEN
        PERFORM todod_once(p_consumer, p_event);
    END IF;
    SELECT tz INTO v_tz FROM users WHERE id = p_user;
    IF NOT FOUND THEN
        PERFORM todod_fail('USER_NOT_FOUND', 'user_id', 'There is no such user.');
    END IF;
    IF NOT todod_fields_ok(p_args, p_fields) THEN
        PERFORM todod_check_fields(p_args, p_fields);
    END IF;
    RETURN v_tz;
END
$$;

-- Whether p_args is an object naming only p_allowed: one set operation
-- for the common case.  The CASE keeps "-" away from non-objects (it
-- fails on scalars).  Inlinable: a single expression.
CREATE FUNCTION todod_fields_ok(p_args jsonb, p_allowed text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p_args) = 'object' THEN p_args - p_allowed = '{}'::jsonb
                ELSE false END
$$;

-- Raises the error for arguments todod_fields_ok refused: the first
-- unknown key in the object's own order.
CREATE FUNCTION todod_check_fields(p_args jsonb, p_allowed text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_key text;
BEGIN
    IF jsonb_typeof(p_args) IS DISTINCT FROM 'object' THEN
        PERFORM todod_fail('INVALID_ARGUMENT', '', 'The arguments must be a JSON object.');
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(p_args) LOOP
        IF NOT v_key = ANY (p_allowed) THEN
            PERFORM todod_fail('UNKNOWN_FIELD', v_key,
                CASE WHEN cardinality(p_allowed) = 0
                     THEN format('Unknown field "%s": this operation takes no arguments.', v_key)
                     ELSE format('Unknown field "%s"; known fields: %s.', v_key,
                                 array_to_string(p_allowed, ', ')) END);
        END IF;
    END LOOP;
END
$$;

-- A string argument: NULL when absent or JSON null.
CREATE FUNCTION todod_arg_text(p_args jsonb, p_key text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := p_args -> p_key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'string' THEN
        PERFORM todod_fail('INVALID_ARGUMENT', p_key, format('"%s" must be a string.', p_key));
    END IF;
    RETURN v #>> '{}';
END
$$;

-- An integer argument, given as a JSON number or a string of digits.
CREATE FUNCTION todod_arg_int(p_args jsonb, p_key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := p_args -> p_key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) IN ('number', 'string') AND (v #>> '{}') ~ '^-?[0-9]{1,18}$' THEN
        RETURN (v #>> '{}')::bigint;
    END IF;
    PERFORM todod_fail('INVALID_ARGUMENT', p_key, format('"%s" must be an integer.', p_key));
END
$$;

CREATE FUNCTION todod_arg_id(p_args jsonb, p_key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v bigint := todod_arg_int(p_args, p_key);
BEGIN
    IF v IS NULL THEN
        PERFORM todod_fail('FIELD_REQUIRED', p_key, format('"%s" is required.', p_key));
    END IF;
    RETURN v;
END
$$;

-- An array of strings, trimmed, blanks and duplicates dropped; NULL when absent.
CREATE FUNCTION todod_arg_names(p_args jsonb, p_key text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := p_args -> p_key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'array'
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
        PERFORM todod_fail('INVALID_ARGUMENT', p_key,
            format('"%s" must be an array of strings.', p_key));
    END IF;
    RETURN ARRAY(SELECT DISTINCT btrim(e) FROM jsonb_array_elements_text(v) e
                  WHERE btrim(e) <> '' ORDER BY 1);
END
$$;

-- ISO 8601.  With Z or an offset it is that instant; without one it is
-- wall-clock time in the user's zone; a bare date is its midnight.
-- '' and NULL give NULL (which is how update clears a time).
CREATE FUNCTION todod_parse_time(p_value text, p_tz text, p_code text, p_field text)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    m text[];
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        RETURN NULL;
    END IF;
    m := regexp_match(btrim(p_value),
        '^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[Tt ]([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$');
    IF m IS NOT NULL THEN
        BEGIN
            IF m[3] IS NOT NULL THEN
                RETURN (m[1] || ' ' || m[2] ||
                        CASE WHEN upper(m[3]) = 'Z' THEN '+00' ELSE m[3] END)::timestamptz;
            END IF;
            RETURN (m[1] || ' ' || coalesce(m[2], '00:00'))::timestamp AT TIME ZONE p_tz;
        EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
            NULL;  -- falls through to the error below
        END;
    END IF;
    PERFORM todod_fail(p_code, p_field,
        format('"%s" is not a date: use ISO 8601, e.g. 2026-11-27T10:00 (your time zone) or 2026-11-27T09:00:00Z.',
               p_value));
END
$$;

-- ---- snapshots and events ----------------------------------------------------

-- The snapshot events and results carry, of the row t with its category
-- row c (NULL for none) and its tag names.  The one definition of that
-- shape; inlinable, so it costs no call.  A caller that just wrote the
-- row builds it from what RETURNING gave instead of reading it again.
CREATE FUNCTION todod_task_snapshot(t tasks, c categories, p_tags jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', t.id,
        'title', t.title,
        'description', t.description,
        'priority', t.priority,
        'status', CASE WHEN t.completed_at IS NULL THEN 'pending' ELSE 'completed' END,
        'due_at', todod_ts(t.due_at),
        'remind_at', todod_ts(t.remind_at),
        'reminder_state', t.reminder_state,
        'rrule', t.rrule,
        'series_id', t.series_id,
        'occurrence', t.occurrence,
        'category', CASE WHEN c.id IS NOT NULL
                         THEN jsonb_build_object('id', c.id, 'name', c.name, 'color', c.color) END,
        'tags', p_tags,
        'completed_at', todod_ts(t.completed_at),
        'created_at', todod_ts(t.created_at),
        'updated_at', todod_ts(t.updated_at))
$$;

-- A task's snapshot as stored now.  PL/pgSQL rather than SQL: a SQL
-- function with a FROM cannot be inlined, and is then planned afresh in
-- every transaction; PL/pgSQL keeps the plan for the session.
CREATE FUNCTION todod_task_json(p_task bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT todod_task_snapshot(t, c,
                       coalesce((SELECT jsonb_agg(g.name ORDER BY g.name COLLATE "C")
                                   FROM task_tags tt JOIN tags g ON g.id = tt.tag_id
                                  WHERE tt.task_id = t.id), '[]'::jsonb))
              FROM tasks t LEFT JOIN categories c ON c.id = t.category_id
             WHERE t.id = p_task);
END
$$;

-- Writes a task event to the outbox.  The INSERT is written here rather
-- than through todod_emit: a SQL function called from PL/pgSQL is planned
-- again in every transaction, a statement in PL/pgSQL once a session.
CREATE FUNCTION todod_task_emit(p_topic text, p_type text, p_user bigint, p_task jsonb,
                                p_changed jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (topic, type, subject, key, data)
    VALUES (p_topic, p_type, 'task/' || (p_task ->> 'id'), p_task ->> 'id',
            jsonb_build_object('user_id', p_user, 'task', p_task) ||
            CASE WHEN p_changed IS NULL THEN '{}'::jsonb
                 ELSE jsonb_build_object('changed', p_changed) END);
END
$$;

-- Compares a snapshot taken before a change with the task now.  When
-- something visible changed, stamps updated_at and emits
-- todod.task.updated naming those fields; otherwise nothing happens.
CREATE FUNCTION todod_task_settle(p_user bigint, p_before jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (p_before ->> 'id')::bigint;
    v_after jsonb := todod_task_json(v_id);
    v_changed jsonb;
    v_stamp timestamptz;
BEGIN
    SELECT jsonb_agg(k ORDER BY k) INTO v_changed
      FROM jsonb_object_keys(v_after) AS k
     WHERE k <> 'updated_at' AND v_after -> k IS DISTINCT FROM p_before -> k;
    IF v_changed IS NULL THEN
        RETURN v_after;
    END IF;
    -- Only updated_at moves, so the snapshot is patched, not read again.
    UPDATE tasks SET updated_at = now() WHERE id = v_id RETURNING updated_at INTO v_stamp;
    v_after := v_after || jsonb_build_object('updated_at', todod_ts(v_stamp));
    PERFORM todod_task_emit('task-events', 'todod.task.updated', p_user, v_after, v_changed);
    RETURN v_after;
END
$$;

-- ---- task fields -----------------------------------------------------------------

CREATE FUNCTION todod_task_title(p_title text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF p_title IS NULL OR btrim(p_title) = '' THEN
        PERFORM todod_fail('TITLE_REQUIRED', 'title', 'A task needs a title.');
    END IF;
    IF length(btrim(p_title)) > 200 THEN
        PERFORM todod_fail('TITLE_TOO_LONG', 'title', 'A title has at most 200 characters.');
    END IF;
    RETURN btrim(p_title);
END
$$;

CREATE FUNCTION todod_task_description(p_text text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF length(p_text) > 10000 THEN
        PERFORM todod_fail('DESCRIPTION_TOO_LONG', 'description',
            'A description has at most 10000 characters.');
    END IF;
    RETURN nullif(p_text, '');
END
$$;

CREATE FUNCTION todod_task_priority(p_priority text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF lower(btrim(p_priority)) IN ('low', 'medium', 'high', 'urgent') THEN
        RETURN lower(btrim(p_priority));
    END IF;
    PERFORM todod_fail('INVALID_PRIORITY', 'priority',
        'Priority is one of low, medium, high or urgent.');
END
$$;

-- A category by name; NULL for NULL or ''.
CREATE FUNCTION todod_category_id(p_user bigint, p_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_name IS NULL OR btrim(p_name) = '' THEN
        RETURN NULL;
    END IF;
    SELECT id INTO v_id FROM categories WHERE user_id = p_user AND name = btrim(p_name);
    IF NOT FOUND THEN
        PERFORM todod_fail('CATEGORY_NOT_FOUND', 'category',
            format('You have no category named "%s"; create it first.', btrim(p_name)));
    END IF;
    RETURN v_id;
END
$$;

-- Applies remind_at / remind_before_min from p_args to t (whose due_at is
-- already the new one) and keeps reminder_state in step: a reminder that
-- moves is pending again, a cleared one is none.
CREATE FUNCTION todod_task_reminder(t tasks, p_args jsonb, p_tz text, p_due_moved boolean)
RETURNS tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_old timestamptz := t.remind_at;
    v_minutes bigint := todod_arg_int(p_args, 'remind_before_min');
    v_at text := todod_arg_text(p_args, 'remind_at');
BEGIN
    IF v_minutes IS NOT NULL AND coalesce(v_at, '') <> '' THEN
        PERFORM todod_fail('REMINDER_CONFLICT', 'remind_before_min',
            'Give either remind_at or remind_before_min, not both.');
    END IF;
    IF v_minutes IS NOT NULL THEN
        IF v_minutes < 0 OR v_minutes > 5256000 THEN
            PERFORM todod_fail('INVALID_REMIND_BEFORE', 'remind_before_min',
                'remind_before_min is a number of minutes from 0 to 5256000 (ten years).');
        END IF;
        IF t.due_at IS NULL THEN
            PERFORM todod_fail('DUE_DATE_REQUIRED', 'remind_before_min',
                'remind_before_min counts back from due_at, so the task needs a due date.');
        END IF;
        t.remind_offset_min := v_minutes;
        t.remind_at := t.due_at - make_interval(mins => v_minutes::integer);
    ELSIF p_args ? 'remind_at' OR p_args ? 'remind_before_min' THEN
        -- an absolute time, or an explicit null / "" that clears the reminder
        t.remind_offset_min := NULL;
        t.remind_at := todod_parse_time(v_at, p_tz, 'INVALID_REMIND_AT', 'remind_at');
    ELSIF p_due_moved AND t.remind_offset_min IS NOT NULL THEN
        t.remind_at := t.due_at - make_interval(mins => t.remind_offset_min);
        IF t.remind_at IS NULL THEN
            t.remind_offset_min := NULL;
        END IF;
    END IF;
    -- A reminder the caller sets must be one that can still fire: one in
    -- the past would go out at once (the original set_reminder's bug), and
    -- one on a finished task never matters.  A due date moved into the past
    -- drags its relative reminder along without complaint.
    IF (v_minutes IS NOT NULL OR coalesce(v_at, '') <> '') AND t.remind_at IS NOT NULL THEN
        IF t.completed_at IS NOT NULL THEN
            PERFORM todod_fail('TASK_COMPLETED', 'id',
                'The task is completed, so a reminder for it would never fire.');
        END IF;
        IF t.remind_at <= now() THEN
            PERFORM todod_fail('REMINDER_IN_PAST',
                CASE WHEN v_minutes IS NOT NULL THEN 'remind_before_min' ELSE 'remind_at' END,
                format('The reminder would fire at %s, %s minutes ago; a reminder must lie in the future.',
                       todod_ts(t.remind_at),
                       floor(extract(epoch FROM now() - t.remind_at) / 60)));
        END IF;
    END IF;
    IF t.reminder_state IS NULL OR t.remind_at IS DISTINCT FROM v_old THEN
        t.reminder_state := CASE WHEN t.remind_at IS NULL THEN 'none' ELSE 'pending' END;
    END IF;
    RETURN t;
END
$$;

-- Makes the task's tags exactly p_names, creating the user's missing tags.
CREATE FUNCTION todod_task_set_tags(p_user bigint, p_task bigint, p_names text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_names text[] := ARRAY(SELECT DISTINCT n FROM unnest(p_names) n);
    v_name text;
BEGIN
    IF cardinality(v_names) > 10 THEN
        PERFORM todod_fail('TOO_MANY_TAGS', 'tags', 'A task has at most 10 tags.');
    END IF;
    FOREACH v_name IN ARRAY v_names LOOP
        PERFORM todod_label_name('tag', v_name, 'tags');
    END LOOP;
    INSERT INTO tags (user_id, name) SELECT p_user, n FROM unnest(v_names) n
        ON CONFLICT (user_id, name) DO NOTHING;
    DELETE FROM task_tags tt USING tags g
     WHERE tt.task_id = p_task AND g.id = tt.tag_id AND NOT g.name = ANY (v_names);
    INSERT INTO task_tags (task_id, tag_id)
        SELECT p_task, g.id FROM tags g WHERE g.user_id = p_user AND g.name = ANY (v_names)
        ON CONFLICT DO NOTHING;
END
$$;

CREATE FUNCTION todod_task_find(p_user bigint, p_args jsonb, p_lock boolean) RETURNS tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := todod_arg_id(p_args, 'id');
    t tasks;
BEGIN
    IF p_lock THEN
        SELECT * INTO t FROM tasks WHERE id = v_id AND user_id = p_user FOR UPDATE;
    ELSE
        SELECT * INTO t FROM tasks WHERE id = v_id AND user_id = p_user;
    END IF;
    IF NOT FOUND THEN
        PERFORM todod_fail('TASK_NOT_FOUND', 'id', format('You have no task %s.', v_id));
    END IF;
    RETURN t;
END
$$;

-- ---- categories and tags: one implementation, two kinds ---------------------------

CREATE FUNCTION todod_label_name(p_kind text, p_name text, p_field text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_max integer := CASE p_kind WHEN 'category' THEN 50 ELSE 30 END;
BEGIN
    IF p_name IS NULL OR btrim(p_name) = '' THEN
        PERFORM todod_fail(upper(p_kind) || '_NAME_REQUIRED', p_field,
            format('A %s needs a name.', p_kind));
    END IF;
    IF length(btrim(p_name)) > v_max THEN
        PERFORM todod_fail(upper(p_kind) || '_NAME_TOO_LONG', p_field,
            format('A %s name has at most %s characters.', p_kind, v_max));
    END IF;
    RETURN btrim(p_name);
END
$$;

CREATE FUNCTION todod_label_color(p_color text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF p_color IS NULL OR p_color = '' THEN
        RETURN NULL;
    END IF;
    IF p_color !~ '^#[0-9A-Fa-f]{6}$' THEN
        PERFORM todod_fail('INVALID_COLOR', 'color', 'A color is written #RRGGBB, e.g. #3366FF.');
    END IF;
    RETURN upper(p_color);
END
$$;

CREATE FUNCTION todod_label_table(p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind WHEN 'category' THEN 'categories' ELSE 'tags' END
$$;

CREATE FUNCTION todod_label_create(p_kind text, p_user bigint, p_args jsonb,
                                   p_consumer text, p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_name text;
    v_color text;
    v_result jsonb;
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['name', 'color'], p_consumer, p_event);
    v_name := todod_label_name(p_kind, todod_arg_text(p_args, 'name'), 'name');
    v_color := todod_label_color(todod_arg_text(p_args, 'color'));
    BEGIN
        EXECUTE format('INSERT INTO %I (user_id, name, color) VALUES ($1, $2, $3)'
                       ' RETURNING jsonb_build_object(''id'', id, ''name'', name, ''color'', color)',
                       todod_label_table(p_kind))
           INTO v_result USING p_user, v_name, v_color;
    EXCEPTION WHEN unique_violation THEN
        PERFORM todod_fail(upper(p_kind) || '_EXISTS', 'name',
            format('You already have a %s named "%s".', p_kind, v_name));
    END;
    RETURN v_result;
END
$$;

CREATE FUNCTION todod_label_list(p_kind text, p_user bigint, p_args jsonb,
                                 p_consumer text, p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_items jsonb;
BEGIN
    PERFORM todod_begin(p_user, p_args, '{}', p_consumer, p_event);
    EXECUTE format('SELECT coalesce(jsonb_agg(jsonb_build_object(''id'', id, ''name'', name,'
                   ' ''color'', color) ORDER BY name COLLATE "C"), ''[]'') FROM %I WHERE user_id = $1',
                   todod_label_table(p_kind))
       INTO v_items USING p_user;
    RETURN jsonb_build_object(todod_label_table(p_kind), v_items);
END
$$;

CREATE FUNCTION todod_label_update(p_kind text, p_user bigint, p_args jsonb,
                                   p_consumer text, p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_name text;
    v_color text;
    v_result jsonb;
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['id', 'name', 'color'], p_consumer, p_event);
    v_id := todod_arg_id(p_args, 'id');
    IF p_args ? 'name' THEN
        v_name := todod_label_name(p_kind, todod_arg_text(p_args, 'name'), 'name');
    END IF;
    v_color := todod_label_color(todod_arg_text(p_args, 'color'));
    BEGIN
        EXECUTE format('UPDATE %I SET name = coalesce($3, name),'
                       ' color = CASE WHEN $4 THEN $5 ELSE color END'
                       ' WHERE id = $1 AND user_id = $2'
                       ' RETURNING jsonb_build_object(''id'', id, ''name'', name, ''color'', color)',
                       todod_label_table(p_kind))
           INTO v_result USING v_id, p_user, v_name, p_args ? 'color', v_color;
    EXCEPTION WHEN unique_violation THEN
        PERFORM todod_fail(upper(p_kind) || '_EXISTS', 'name',
            format('You already have a %s named "%s".', p_kind, v_name));
    END;
    IF v_result IS NULL THEN
        PERFORM todod_fail(upper(p_kind) || '_NOT_FOUND', 'id',
            format('You have no %s %s.', p_kind, v_id));
    END IF;
    RETURN v_result;
END
$$;

CREATE FUNCTION todod_label_delete(p_kind text, p_user bigint, p_args jsonb,
                                   p_consumer text, p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_result jsonb;
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['id'], p_consumer, p_event);
    v_id := todod_arg_id(p_args, 'id');
    EXECUTE format('DELETE FROM %I WHERE id = $1 AND user_id = $2'
                   ' RETURNING jsonb_build_object(''id'', id, ''name'', name, ''color'', color)',
                   todod_label_table(p_kind))
       INTO v_result USING v_id, p_user;
    IF v_result IS NULL THEN
        PERFORM todod_fail(upper(p_kind) || '_NOT_FOUND', 'id',
            format('You have no %s %s.', p_kind, v_id));
    END IF;
    RETURN jsonb_build_object('deleted', true, p_kind, v_result);
END
$$;

CREATE FUNCTION todod_category_create(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_label_create('category', $1, $2, $3, $4) $$;
CREATE FUNCTION todod_category_list(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_label_list('category', $1, $2, $3, $4) $$;
CREATE FUNCTION todod_category_update(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_label_update('category', $1, $2, $3, $4) $$;
CREATE FUNCTION todod_category_delete(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_label_delete('category', $1, $2, $3, $4) $$;
CREATE FUNCTION todod_tag_create(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_label_create('tag', $1, $2, $3, $4) $$;
CREATE FUNCTION todod_tag_list(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_label_list('tag', $1, $2, $3, $4) $$;
CREATE FUNCTION todod_tag_update(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_label_update('tag', $1, $2, $3, $4) $$;
CREATE FUNCTION todod_tag_delete(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_label_delete('tag', $1, $2, $3, $4) $$;

-- ---- tasks ---------------------------------------------------------------------------

CREATE FUNCTION todod_task_create(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    -- series_id and occurrence are for the recurrence plugin's successors.
    v_tz text := todod_begin(p_user, p_args, ARRAY['title', 'description', 'priority', 'due_at',
        'remind_at', 'remind_before_min', 'category', 'tags', 'rrule', 'series_id', 'occurrence'],
        p_consumer, p_event);
    t tasks;
    v_tags text[];
    v_task jsonb;
BEGIN
    t.title := todod_task_title(todod_arg_text(p_args, 'title'));
    t.description := todod_task_description(todod_arg_text(p_args, 'description'));
    t.priority := todod_task_priority(coalesce(todod_arg_text(p_args, 'priority'), 'medium'));
    t.due_at := todod_parse_time(todod_arg_text(p_args, 'due_at'), v_tz, 'INVALID_DUE_DATE', 'due_at');
    IF p_args ? 'remind_at' OR p_args ? 'remind_before_min' THEN
        t := todod_task_reminder(t, p_args, v_tz, false);
    ELSE
        t.reminder_state := 'none';  -- what todod_task_reminder makes of no arguments
    END IF;
    t.category_id := todod_category_id(p_user, todod_arg_text(p_args, 'category'));
    t.rrule := nullif(btrim(todod_arg_text(p_args, 'rrule')), '');
    t.occurrence := coalesce(todod_arg_int(p_args, 'occurrence'), 1);
    -- A task starts its own series unless it continues one: the id is
    -- drawn first so series_id can default to it in the same insert.
    t.id := nextval('tasks_id_seq');
    t.series_id := coalesce(todod_arg_int(p_args, 'series_id'), t.id);
    INSERT INTO tasks (id, user_id, title, description, priority, due_at, remind_at,
                       remind_offset_min, reminder_state, rrule, series_id, occurrence, category_id)
        OVERRIDING SYSTEM VALUE
        VALUES (t.id, p_user, t.title, t.description, t.priority, t.due_at, t.remind_at,
                t.remind_offset_min, t.reminder_state, t.rrule, t.series_id, t.occurrence,
                t.category_id)
        RETURNING * INTO t;
    v_tags := todod_arg_names(p_args, 'tags');
    -- Without tags or a category the row RETURNING gave is the whole
    -- snapshot; with them, reading it back is simpler than rebuilding it.
    IF cardinality(v_tags) > 0 THEN
        PERFORM todod_task_set_tags(p_user, t.id, v_tags);
    END IF;
    IF cardinality(v_tags) > 0 OR t.category_id IS NOT NULL THEN
        v_task := todod_task_json(t.id);
    ELSE
        v_task := todod_task_snapshot(t, NULL, '[]');
    END IF;
    PERFORM todod_task_emit('task-events', 'todod.task.created', p_user, v_task);
    RETURN v_task;
END
$$;

CREATE FUNCTION todod_task_get(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['id'], p_consumer, p_event);
    RETURN todod_task_json((todod_task_find(p_user, p_args, false)).id);
END
$$;

CREATE FUNCTION todod_task_update(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tz text := todod_begin(p_user, p_args, ARRAY['id', 'title', 'description', 'priority',
        'due_at', 'remind_at', 'remind_before_min', 'category', 'tags', 'rrule'],
        p_consumer, p_event);
    o tasks;
    t tasks;
    v_before jsonb;
BEGIN
    o := todod_task_find(p_user, p_args, true);
    v_before := todod_task_json(o.id);
    t := o;
    IF p_args ? 'title' THEN
        t.title := todod_task_title(todod_arg_text(p_args, 'title'));
    END IF;
    IF p_args ? 'description' THEN
        t.description := todod_task_description(todod_arg_text(p_args, 'description'));
    END IF;
    IF p_args ? 'priority' THEN
        t.priority := todod_task_priority(todod_arg_text(p_args, 'priority'));
    END IF;
    IF p_args ? 'due_at' THEN
        t.due_at := todod_parse_time(todod_arg_text(p_args, 'due_at'), v_tz,
                                     'INVALID_DUE_DATE', 'due_at');
    END IF;
    t := todod_task_reminder(t, p_args, v_tz, t.due_at IS DISTINCT FROM o.due_at);
    IF p_args ? 'category' THEN
        t.category_id := todod_category_id(p_user, todod_arg_text(p_args, 'category'));
    END IF;
    IF p_args ? 'rrule' THEN
        t.rrule := nullif(btrim(todod_arg_text(p_args, 'rrule')), '');
    END IF;
    IF t IS DISTINCT FROM o THEN
        UPDATE tasks SET title = t.title, description = t.description, priority = t.priority,
                         due_at = t.due_at, remind_at = t.remind_at,
                         remind_offset_min = t.remind_offset_min,
                         reminder_state = t.reminder_state, category_id = t.category_id,
                         rrule = t.rrule
         WHERE id = o.id;
    END IF;
    IF p_args ? 'tags' THEN
        PERFORM todod_task_set_tags(p_user, o.id, coalesce(todod_arg_names(p_args, 'tags'), '{}'));
    END IF;
    RETURN todod_task_settle(p_user, v_before);
END
$$;

-- Completing twice is not an error, and not a second event.
CREATE FUNCTION todod_task_complete(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t tasks;
    v_task jsonb;
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['id'], p_consumer, p_event);
    t := todod_task_find(p_user, p_args, true);
    IF t.completed_at IS NOT NULL THEN
        RETURN todod_task_json(t.id);
    END IF;
    -- A done task's reminder would only nag.
    UPDATE tasks SET completed_at = now(), updated_at = now(),
                     reminder_state = CASE reminder_state WHEN 'pending' THEN 'skipped'
                                                          ELSE reminder_state END
     WHERE id = t.id;
    v_task := todod_task_json(t.id);
    PERFORM todod_task_emit('task-events', 'todod.task.completed', p_user, v_task);
    IF t.rrule IS NOT NULL THEN
        PERFORM todod_task_emit('task-recurrence', 'todod.task.completed', p_user, v_task);
    END IF;
    RETURN v_task;
END
$$;

CREATE FUNCTION todod_task_uncomplete(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t tasks;
    v_before jsonb;
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['id'], p_consumer, p_event);
    t := todod_task_find(p_user, p_args, true);
    v_before := todod_task_json(t.id);
    UPDATE tasks SET completed_at = NULL,
                     reminder_state = CASE WHEN reminder_state = 'skipped' AND remind_at > now()
                                           THEN 'pending' ELSE reminder_state END
     WHERE id = t.id AND completed_at IS NOT NULL;
    RETURN todod_task_settle(p_user, v_before);
END
$$;

CREATE FUNCTION todod_task_delete(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t tasks;
    v_task jsonb;
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['id'], p_consumer, p_event);
    t := todod_task_find(p_user, p_args, true);
    v_task := todod_task_json(t.id);
    DELETE FROM tasks WHERE id = t.id;
    PERFORM todod_task_emit('task-events', 'todod.task.deleted', p_user, v_task);
    RETURN jsonb_build_object('deleted', true, 'task', v_task);
END
$$;

CREATE FUNCTION todod_task_tags_edit(p_user bigint, p_args jsonb, p_consumer text, p_event text,
                                     p_add boolean) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t tasks;
    v_before jsonb;
    v_names text[];
    v_current text[];
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['id', 'tags'], p_consumer, p_event);
    t := todod_task_find(p_user, p_args, true);
    v_names := todod_arg_names(p_args, 'tags');
    IF v_names IS NULL THEN
        PERFORM todod_fail('FIELD_REQUIRED', 'tags', '"tags" is required: an array of tag names.');
    END IF;
    v_before := todod_task_json(t.id);
    v_current := ARRAY(SELECT jsonb_array_elements_text(v_before -> 'tags'));
    PERFORM todod_task_set_tags(p_user, t.id,
        CASE WHEN p_add THEN v_current || v_names
             ELSE ARRAY(SELECT unnest(v_current) EXCEPT SELECT unnest(v_names)) END);
    RETURN todod_task_settle(p_user, v_before);
END
$$;

CREATE FUNCTION todod_task_tag_add(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_task_tags_edit($1, $2, $3, $4, true) $$;
CREATE FUNCTION todod_task_tag_remove(bigint, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT todod_task_tags_edit($1, $2, $3, $4, false) $$;

-- ---- listing and search -----------------------------------------------------------

-- The cursor is base64 of {"s": sort, "t": time key, "n": number key,
-- "i": id}: the keyset of the last row shown.  Keys travel as text, the
-- only exact round trip for both timestamptz and float8.
CREATE FUNCTION todod_cursor_encode(p_sort text, p_ts timestamptz, p_num float8, p_id bigint)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT translate(encode(convert_to(jsonb_build_object('s', p_sort, 't', p_ts::text,
                                                          'n', p_num::text, 'i', p_id)::text,
                                       'UTF8'), 'base64'), E'\n', '')
$$;

CREATE FUNCTION todod_cursor_decode(p_cursor text, p_sort text,
                                    OUT c_ts timestamptz, OUT c_num float8, OUT c_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    j jsonb;
BEGIN
    BEGIN
        j := convert_from(decode(p_cursor, 'base64'), 'UTF8')::jsonb;
        c_ts := (j ->> 't')::timestamptz;
        c_num := (j ->> 'n')::float8;
        c_id := (j ->> 'i')::bigint;
    EXCEPTION WHEN OTHERS THEN
        j := NULL;
    END;
    IF j IS NULL OR j ->> 's' IS DISTINCT FROM p_sort
       OR c_ts IS NULL OR c_num IS NULL OR c_id IS NULL THEN
        PERFORM todod_fail('INVALID_CURSOR', 'cursor',
            'Pass next_cursor from the previous page unchanged, with the same sort.');
    END IF;
END
$$;

-- One page of a user's tasks in the order (time key, number key, id) of
-- the cursor: created -> created_at; due -> due_at with no date last;
-- priority -> urgent first; rank -> best text match first.  Within one
-- order only one of the two keys varies, so a page is an index range
-- (user_id, key, id) > cursor read for limit + 1 rows (the extra one
-- tells whether there is a next page), filtered and made into snapshots
-- in the same statement.  Text matching has no index order, so search
-- ranks every match (found through the GIN index on search) and keeps
-- the best; search without words lists by id.
--
-- Each order is a function of its own, made below from one template, so
-- that each statement keeps its plan for the session: planning this one
-- costs about as much as running it.  The plan is forced generic: it
-- reads the order's index whatever the arguments, but the optional
-- filters' guessed selectivity would have the plan cache replan every
-- call.  The price: a rare filter walks the index until the page fills.
-- Arguments are what todod_task_page
-- prepared: the cursor as a bound on (key, id) in c_ts or c_num (time or
-- number keys) and c_id, filters NULL when not asked for, p_tags_need
-- how many of p_tags a task must have (0: no tag filter).
DO $generate$
DECLARE
    o record;
    v_rows text;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        --  order,      key (as its index has it),                  bound,   split by status
            ('created',  't.created_at',                             'c_ts',  true),
            ('due',      'coalesce(t.due_at, ''infinity'')',         'c_ts',  true),
            ('priority', 'todod_priority_rank(t.priority)::float8',  'c_num', true),
            ('rank',     '(-ts_rank(t.search, p_tsq))::float8',      'c_num', false),
            ('id',       't.id',                                     'c_id',  false))
        AS v(name, key, bound, split)
    LOOP
        -- LIMIT 101 (the largest page and one) keeps the generic plan's
        -- estimates, and so the plan, what they are with a real limit.
        v_rows := replace(replace(replace(replace($rows$
            SELECT t.id, {key} AS k FROM tasks t
             WHERE t.user_id = p_user AND {after} {status}
               AND (p_priority IS NULL OR t.priority = p_priority)
               AND (p_category IS NULL OR t.category_id = p_category)
               AND {match}
               AND (p_due_before IS NULL OR t.due_at < p_due_before)
               AND (p_due_after IS NULL OR t.due_at > p_due_after)
               AND (p_tags_need = 0 OR
                    (SELECT count(*) FROM task_tags tt JOIN tags g ON g.id = tt.tag_id
                      WHERE tt.task_id = t.id AND g.name = ANY (p_tags)) >= p_tags_need)
             ORDER BY {key}, t.id LIMIT 101 $rows$,
            '{after}', CASE o.name WHEN 'id' THEN 't.id > c_id'
                -- ts_rank is dear: on a first page every row is after.
                WHEN 'rank' THEN '(c_num = ''-infinity'' OR ({key}, t.id) > (c_num, c_id))'
                ELSE '({key}, t.id) > ({bound}, c_id)' END),
            '{key}', o.key), '{bound}', o.bound),
            -- Search has words, or is the order by id.
            '{match}', CASE o.name WHEN 'rank' THEN 't.search @@ p_tsq'
                                   ELSE '(p_tsq IS NULL OR t.search @@ p_tsq)' END);
        -- Split, all statuses merge the pages of both partial indexes.
        v_rows := CASE WHEN o.split THEN
            format('(%s) UNION ALL (%s)',
                   replace(v_rows, '{status}', 'AND t.completed_at IS NULL AND p_status <> ''completed'''),
                   replace(v_rows, '{status}', 'AND t.completed_at IS NOT NULL AND p_status <> ''pending'''))
            ELSE replace(v_rows, '{status}',
                'AND (p_status = ''all'' OR (p_status = ''completed'') = (t.completed_at IS NOT NULL))') END;
        EXECUTE format($fn$
            CREATE FUNCTION %I(p_user bigint, p_sort text, c_ts timestamptz, c_num float8,
                               c_id bigint, p_limit bigint, p_status text, p_priority text,
                               p_category bigint, p_tags text[], p_tags_need integer,
                               p_tsq tsquery, p_due_before timestamptz,
                               p_due_after timestamptz)
            RETURNS jsonb
            LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $body$
            BEGIN
                RETURN (
                    SELECT jsonb_build_object(
                        'tasks', coalesce(jsonb_agg(todod_task_snapshot(t, c,
                                     coalesce((SELECT jsonb_agg(g.name ORDER BY g.name COLLATE "C")
                                                 FROM task_tags tt JOIN tags g ON g.id = tt.tag_id
                                                WHERE tt.task_id = p.id), '[]'::jsonb))
                                     ORDER BY p.k, p.id) FILTER (WHERE p.n <= p_limit), '[]'::jsonb),
                        'next_cursor', CASE WHEN count(*) > p_limit THEN
                            max(todod_cursor_encode(p_sort, %s, %s, p.id)) FILTER (WHERE p.n = p_limit)
                        END)
                      FROM (SELECT r.*, row_number() OVER (ORDER BY r.k, r.id) AS n
                              FROM (%s) r
                             ORDER BY r.k, r.id LIMIT p_limit + 1) p
                      JOIN tasks t ON t.id = p.id
                      LEFT JOIN categories c ON c.id = t.category_id);
            END
            $body$ $fn$,
            'todod_task_page_' || o.name,
            CASE WHEN o.bound = 'c_ts' THEN 'p.k' ELSE '''-infinity''::timestamptz' END,
            CASE WHEN o.bound = 'c_num' THEN 'p.k' ELSE '0::float8' END,
            v_rows);
    END LOOP;
END
$generate$;

CREATE FUNCTION todod_task_page(p_user bigint, p_args jsonb, p_sort text, p_query text,
                                p_status text, p_priority text, p_category bigint,
                                p_tags text[], p_tags_all boolean,
                                p_due_before timestamptz, p_due_after timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_limit bigint := coalesce(todod_arg_int(p_args, 'limit'), 20);
    v_cursor text := todod_arg_text(p_args, 'cursor');
    v_empty constant jsonb := jsonb_build_object('tasks', '[]'::jsonb, 'next_cursor', NULL);
    v_tsq tsquery;
    -- The order that pages: search without words goes by id.
    v_order text := p_sort;
    -- Without a cursor the page starts before every row: ids start at 1.
    c_ts timestamptz := '-infinity';
    c_num float8 := '-infinity';
    c_id bigint := -9223372036854775808;
    v_page jsonb;
BEGIN
    IF v_limit < 1 OR v_limit > 100 THEN
        PERFORM todod_fail('INVALID_LIMIT', 'limit', 'limit is a number from 1 to 100.');
    END IF;
    IF coalesce(v_cursor, '') <> '' THEN
        SELECT * INTO c_ts, c_num, c_id FROM todod_cursor_decode(v_cursor, p_sort);
    END IF;
    IF coalesce(btrim(p_query), '') <> '' THEN
        v_tsq := websearch_to_tsquery('simple', p_query);
        -- Only punctuation or operators: nothing can match.
        IF numnode(v_tsq) = 0 THEN
            RETURN v_empty;
        END IF;
    ELSIF p_sort = 'rank' THEN
        v_order := 'id';
    END IF;
    -- The cursor's triple against a row's, where the rows' number key is
    -- 0 (time orders, and by id) or their time key -infinity (the
    -- others), comes down to the bound on (key, id) the index reads from.
    IF v_order NOT IN ('created', 'due') AND c_ts > '-infinity' THEN
        RETURN v_empty;
    END IF;
    IF v_order IN ('created', 'due', 'id') THEN
        c_id := CASE WHEN c_num = 0 THEN c_id
                     WHEN c_num < 0 THEN -9223372036854775808
                     ELSE 9223372036854775807 END;
    END IF;
    -- due_after bounds the due order's range as well; the filter stays,
    -- since a task without a date sorts as infinity.
    IF v_order = 'due' AND (c_ts, c_id) < (p_due_after, 9223372036854775807) THEN
        c_ts := p_due_after;
        c_id := 9223372036854775807;
    END IF;
    EXECUTE format('SELECT %I($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)',
                   'todod_task_page_' || v_order)
       INTO v_page
      USING p_user, p_sort, c_ts, c_num, c_id, v_limit, p_status, p_priority, p_category, p_tags,
            CASE WHEN coalesce(cardinality(p_tags), 0) = 0 THEN 0
                 WHEN p_tags_all THEN cardinality(p_tags) ELSE 1 END,
            v_tsq, p_due_before, p_due_after;
    RETURN v_page;
END
$$;

CREATE FUNCTION todod_task_list(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tz text := todod_begin(p_user, p_args, ARRAY['status', 'priority', 'category', 'tags',
        'tags_mode', 'due_before', 'due_after', 'query', 'sort', 'limit', 'cursor'],
        p_consumer, p_event);
    v_status text;
    v_priority text;
    v_mode text;
    v_sort text;
BEGIN
    v_status := lower(coalesce(todod_arg_text(p_args, 'status'), 'pending'));
    IF v_status NOT IN ('pending', 'completed', 'all') THEN
        PERFORM todod_fail('INVALID_STATUS', 'status', 'status is pending, completed or all.');
    END IF;
    IF todod_arg_text(p_args, 'priority') IS NOT NULL THEN
        v_priority := todod_task_priority(todod_arg_text(p_args, 'priority'));
    END IF;
    v_mode := lower(coalesce(todod_arg_text(p_args, 'tags_mode'), 'any'));
    IF v_mode NOT IN ('any', 'all') THEN
        PERFORM todod_fail('INVALID_TAGS_MODE', 'tags_mode', 'tags_mode is any or all.');
    END IF;
    v_sort := lower(coalesce(todod_arg_text(p_args, 'sort'), 'created'));
    IF v_sort NOT IN ('created', 'due', 'priority') THEN
        PERFORM todod_fail('INVALID_SORT', 'sort', 'sort is created, due or priority.');
    END IF;
    RETURN todod_task_page(p_user, p_args, v_sort, todod_arg_text(p_args, 'query'), v_status,
        v_priority, todod_category_id(p_user, todod_arg_text(p_args, 'category')),
        todod_arg_names(p_args, 'tags'), v_mode = 'all',
        todod_parse_time(todod_arg_text(p_args, 'due_before'), v_tz, 'INVALID_DUE_DATE', 'due_before'),
        todod_parse_time(todod_arg_text(p_args, 'due_after'), v_tz, 'INVALID_DUE_DATE', 'due_after'));
END
$$;

-- Title matches (weight A) rank above description matches (B).  An empty
-- query lists every task.
CREATE FUNCTION todod_task_search(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['query', 'limit', 'cursor'], p_consumer, p_event);
    RETURN todod_task_page(p_user, p_args, 'rank', todod_arg_text(p_args, 'query'), 'all',
                           NULL, NULL, NULL, false, NULL, NULL);
END
$$;

-- ---- users ----------------------------------------------------------------------------

-- PL/pgSQL for the same reason as todod_task_json: a plan kept per session.
CREATE FUNCTION todod_user_json(p_user bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object('id', id, 'name', name, 'email', email, 'tz', tz,
                                      'created_at', todod_ts(created_at))
              FROM users WHERE id = p_user);
END
$$;

CREATE FUNCTION todod_user_get(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM todod_begin(p_user, p_args, '{}', p_consumer, p_event);
    RETURN todod_user_json(p_user);
END
$$;

-- Authentication: only the token's SHA-256 is stored, so it is hashed the
-- same way and looked up.  The caller's user_id plays no part.
-- For `auth = none`: the configured default user, by name.
CREATE FUNCTION todod_user_by_name(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_name text;
    v_id bigint;
BEGIN
    IF NOT todod_fields_ok(p_args, ARRAY['name']) THEN
        PERFORM todod_check_fields(p_args, ARRAY['name']);
    END IF;
    v_name := todod_arg_text(p_args, 'name');
    IF coalesce(v_name, '') = '' THEN
        PERFORM todod_fail('FIELD_REQUIRED', 'name', '"name" is required.');
    END IF;
    SELECT id INTO v_id FROM users WHERE name = v_name;
    IF NOT FOUND THEN
        PERFORM todod_fail('USER_NOT_FOUND', 'name', format('There is no user named %s.', v_name));
    END IF;
    RETURN todod_user_json(v_id);
END
$$;

CREATE FUNCTION todod_user_by_token(p_user bigint, p_args jsonb, p_consumer text, p_event text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_token text;
    v_id bigint;
BEGIN
    IF p_consumer IS NOT NULL AND p_event IS NOT NULL THEN
        PERFORM todod_once(p_consumer, p_event);
    END IF;
    IF NOT todod_fields_ok(p_args, ARRAY['token']) THEN
        PERFORM todod_check_fields(p_args, ARRAY['token']);
    END IF;
    v_token := todod_arg_text(p_args, 'token');
    IF coalesce(v_token, '') = '' THEN
        PERFORM todod_fail('FIELD_REQUIRED', 'token', '"token" is required.');
    END IF;
    SELECT id INTO v_id FROM users WHERE token_hash = sha256(convert_to(v_token, 'UTF8'));
    IF NOT FOUND THEN
        PERFORM todod_fail('USER_NOT_FOUND', 'token', 'No user has this token.');
    END IF;
    RETURN todod_user_json(v_id);
END
$$;
