-- 005_label_quotas: one user must not crowd out the others.
--
-- Categories and tags get a per-user quota, and their lists are pages
-- (limit, cursor) like the task lists.
--
-- The quotas are [core] options: the daemon hands them to each statement
-- that may create a label as the transaction-local settings
-- todod.max_categories and todod.max_tags (see store.c).  Unset or empty
-- means no quota, for `todod migrate` and tools that talk SQL directly.

-- Pages in name order read this index from the cursor on.
CREATE INDEX categories_user_name_c ON categories (user_id, name COLLATE "C");
CREATE INDEX tags_user_name_c ON tags (user_id, name COLLATE "C");

CREATE FUNCTION todod_label_quota(p_kind text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('todod.max_' || todod_label_table(p_kind), true), '')::integer
$$;

-- Fails QUOTA_EXCEEDED (naming p_field) when creating the labels among
-- p_names the user does not have yet would take them past the quota.
-- Creators of one user's labels queue on the user's row, so two at once
-- cannot both take the last place; FOR NO KEY UPDATE leaves the foreign
-- key checks of the user's other writes alone.  Only a call that would
-- create something takes the lock.
CREATE FUNCTION todod_label_room(p_kind text, p_user bigint, p_names text[], p_field text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_quota integer := todod_label_quota(p_kind);
    v_table text := todod_label_table(p_kind);
    v_have bigint;  -- of p_names (distinct), those the user has
    v_total bigint; -- every label of the kind the user has
BEGIN
    IF v_quota IS NULL OR coalesce(cardinality(p_names), 0) = 0 THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT count(*) FROM %I WHERE user_id = $1 AND name = ANY ($2)', v_table)
       INTO v_have USING p_user, p_names;
    IF v_have = cardinality(p_names) THEN
        RETURN;
    END IF;
    PERFORM 1 FROM users WHERE id = p_user FOR NO KEY UPDATE;
    -- Counted again under the lock: another call may have just made some.
    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE name = ANY ($2))'
                   ' FROM %I WHERE user_id = $1', v_table)
       INTO v_total, v_have USING p_user, p_names;
    IF v_total + cardinality(p_names) - v_have > v_quota THEN
        PERFORM todod_fail('QUOTA_EXCEEDED', p_field,
            format('You have %s of at most %s %s; delete those you no longer need '
                   '(delete_%s) or use ones you have (list_%s).',
                   v_total, v_quota, v_table, p_kind, v_table));
    END IF;
END
$$;

-- Run in the FROM clause of a statement, before its function: the quotas
-- hold for that statement's transaction only.
CREATE FUNCTION todod_label_quotas_set(p_categories text, p_tags text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('todod.max_categories', p_categories, true),
            set_config('todod.max_tags', p_tags, true);
END
$$;

CREATE OR REPLACE FUNCTION todod_label_create(p_kind text, p_user bigint, p_args jsonb,
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
    PERFORM todod_label_room(p_kind, p_user, ARRAY[v_name], 'name');
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

-- add_task, update_task and add_tag_to_task create missing tags: they
-- count against the quota too.
CREATE OR REPLACE FUNCTION todod_task_set_tags(p_user bigint, p_task bigint, p_names text[])
RETURNS void
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
    PERFORM todod_label_room('tag', p_user, v_names, 'tags');
    INSERT INTO tags (user_id, name) SELECT p_user, n FROM unnest(v_names) n
        ON CONFLICT (user_id, name) DO NOTHING;
    DELETE FROM task_tags tt USING tags g
     WHERE tt.task_id = p_task AND g.id = tt.tag_id AND NOT g.name = ANY (v_names);
    INSERT INTO task_tags (task_id, tag_id)
        SELECT p_task, g.id FROM tags g WHERE g.user_id = p_user AND g.name = ANY (v_names)
        ON CONFLICT DO NOTHING;
END
$$;

-- add_tag_to_task and remove_tag_from_task name at least one tag: an
-- empty list is a caller's mistake, not a request to change nothing.
CREATE OR REPLACE FUNCTION todod_task_tags_edit(p_user bigint, p_args jsonb, p_consumer text,
                                                p_event text, p_add boolean) RETURNS jsonb
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
    IF cardinality(v_names) = 0 THEN
        PERFORM todod_fail('INVALID_ARGUMENT', 'tags',
            '"tags" needs at least one tag name (1-30 characters).');
    END IF;
    v_before := todod_task_json(t.id);
    v_current := ARRAY(SELECT jsonb_array_elements_text(v_before -> 'tags'));
    PERFORM todod_task_set_tags(p_user, t.id,
        CASE WHEN p_add THEN v_current || v_names
             ELSE ARRAY(SELECT unnest(v_current) EXCEPT SELECT unnest(v_names)) END);
    RETURN todod_task_settle(p_user, v_before);
END
$$;

-- A page of labels in name order.  The cursor is base64 of {"s": kind,
-- "n": the last name shown}: names are unique per user, so the name alone
-- says where the next page starts.
CREATE OR REPLACE FUNCTION todod_label_list(p_kind text, p_user bigint, p_args jsonb,
                                            p_consumer text, p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_limit bigint;
    v_cursor text;
    v_after text := '';
    v_rows jsonb;
    v_next text;
BEGIN
    PERFORM todod_begin(p_user, p_args, ARRAY['limit', 'cursor'], p_consumer, p_event);
    v_limit := coalesce(todod_arg_int(p_args, 'limit'), 20);
    IF v_limit < 1 OR v_limit > 100 THEN
        PERFORM todod_fail('INVALID_LIMIT', 'limit', 'limit is a number from 1 to 100.');
    END IF;
    v_cursor := todod_arg_text(p_args, 'cursor');
    IF coalesce(v_cursor, '') <> '' THEN
        BEGIN
            v_rows := convert_from(decode(v_cursor, 'base64'), 'UTF8')::jsonb;
        EXCEPTION WHEN OTHERS THEN
            v_rows := NULL;
        END;
        IF jsonb_typeof(v_rows) IS DISTINCT FROM 'object' OR v_rows ->> 's' IS DISTINCT FROM p_kind
           OR v_rows ->> 'n' IS NULL THEN
            PERFORM todod_fail('INVALID_CURSOR', 'cursor',
                format('Pass next_cursor from the previous list_%s page unchanged.',
                       todod_label_table(p_kind)));
        END IF;
        v_after := v_rows ->> 'n';
    END IF;
    -- One row past the page says whether there is a next one.
    EXECUTE format('SELECT coalesce(jsonb_agg(jsonb_build_object(''id'', id, ''name'', name,'
                   ' ''color'', color) ORDER BY name COLLATE "C"), ''[]'')'
                   ' FROM (SELECT id, name, color FROM %I'
                   '        WHERE user_id = $1 AND name COLLATE "C" > $2'
                   '        ORDER BY name COLLATE "C" LIMIT $3) page',
                   todod_label_table(p_kind))
       INTO v_rows USING p_user, v_after, v_limit + 1;
    IF jsonb_array_length(v_rows) > v_limit THEN
        v_rows := v_rows - v_limit::integer;
        v_next := translate(encode(convert_to(jsonb_build_object(
                      's', p_kind, 'n', v_rows -> (v_limit::integer - 1) ->> 'name')::text, 'UTF8'),
                      'base64'), E'\n', '');
    END IF;
    RETURN jsonb_build_object(todod_label_table(p_kind), v_rows, 'next_cursor', v_next);
END
$$;
