-- 010_scale: search_tasks for a rare word of a user with many tasks.
--
-- Every page function keeps one generic plan (002), estimated for the
-- average user.  For search (the rank order) that plan ANDs the bitmap of
-- all the user's tasks (tasks_user) with the word's (tasks_search): for a
-- user with 100,000 tasks it reads 100,000 index entries to keep the 1,000
-- that have the word, about half of the call's 9 ms.  Planned for the
-- actual user and words, the word's few rows are read from the GIN index
-- and the user checked on each; search, unlike a page of a list, costs
-- more to run than to plan, so it is planned at every call.
ALTER FUNCTION todod_task_page_rank(bigint, text, timestamptz, float8, bigint, bigint, text,
                                    text, bigint, text[], integer, tsquery, timestamptz,
                                    timestamptz)
    SET plan_cache_mode = force_custom_plan;

-- Claiming due reminders (003) takes them ORDER BY remind_at, id, but
-- tasks_reminders_pending orders by remind_at alone: with 100,000
-- reminders due in the same minute every claim of a batch sorted all
-- those still pending by id (an incremental sort over one group), so
-- claiming them all read the group once per batch.  With the id in the
-- index a claim reads its batch and stops; the earliest-reminder queries
-- read it as they read the old one.
CREATE INDEX tasks_reminders_pending_id ON tasks (remind_at, id) WHERE reminder_state = 'pending';
DROP INDEX tasks_reminders_pending;
