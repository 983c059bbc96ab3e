-- 005_settings_notify.sql: tell every process when a setting changes.
--
-- What it changes: a statement trigger on roomcast.settings sends the
-- control notification 'c settings' on channel 'roomcast' after any
-- insert, update or delete. Workers then read the settings at once
-- instead of at their next periodic read (every 5 s), so every process
-- applies a change within moments of its commit, and at the same moment.
-- The periodic read stays, for a process whose LISTEN connection was down
-- when the change was made.
-- Runs once, through deploy/roomcast-migrate.

CREATE FUNCTION roomcast.settings_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('roomcast', 'c settings');
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION roomcast.settings_changed() IS
    'Trigger function: notifies every process that roomcast.settings '
    'changed, so they read it again at once.';

-- FOR EACH STATEMENT: one notification per change, however many rows it
-- touches (PostgreSQL also folds identical notifications of one
-- transaction into one).
CREATE TRIGGER settings_changed
    AFTER INSERT OR UPDATE OR DELETE ON roomcast.settings
    FOR EACH STATEMENT EXECUTE FUNCTION roomcast.settings_changed();
