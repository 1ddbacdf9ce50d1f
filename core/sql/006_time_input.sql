-- 006_time_input: every time the store accepts can be sent back to it.
--
-- todod_parse_time (002) let two kinds of input through to a failure or a
-- value nobody can use:
--   - an offset PostgreSQL cannot read (+99:99) raised SQLSTATE 22009,
--     which it did not catch: the caller saw INTERNAL_ERROR;
--   - an instant outside years 0001-9999 in UTC (9999-12-31T23:59:59-12:00
--     is 10000-01-01T11:59:59Z) was stored, and then came back in a form
--     (a five-digit year) that todod_parse_time itself refuses.
-- Both are now the caller's error, with the caller's code and field.

CREATE OR REPLACE FUNCTION todod_parse_time(p_value text, p_tz text, p_code text, p_field text)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    m text[];
    v_time timestamptz;
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        RETURN NULL;
    END IF;
    m := regexp_match(btrim(p_value),
        '^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[Tt ]([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$');
    IF m IS NOT NULL THEN
        BEGIN
            IF m[3] IS NOT NULL THEN
                v_time := (m[1] || ' ' || m[2] ||
                           CASE WHEN upper(m[3]) = 'Z' THEN '+00' ELSE m[3] END)::timestamptz;
            ELSE
                v_time := (m[1] || ' ' || coalesce(m[2], '00:00'))::timestamp AT TIME ZONE p_tz;
            END IF;
        -- Class 22 (data exception) is every way a well-shaped text can
        -- still not be a time: 2026-02-30, 25:00, an offset of +99:99.
        EXCEPTION WHEN data_exception THEN
            v_time := NULL;
        END;
    END IF;
    IF v_time IS NULL THEN
        PERFORM todod_fail(p_code, p_field,
            format('"%s" is not a date: use ISO 8601, e.g. 2026-11-27T10:00 (your time zone) or 2026-11-27T09:00:00Z.',
                   p_value));
    END IF;
    -- Times go back out in UTC with a four-digit year (todod_ts).
    IF v_time < '0001-01-01 00:00:00+00' OR v_time >= '10000-01-01 00:00:00+00' THEN
        PERFORM todod_fail(p_code, p_field,
            format('"%s" falls outside the years 0001 to 9999 in UTC, which todod keeps: give a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.',
                   p_value));
    END IF;
    RETURN v_time;
END
$$;
