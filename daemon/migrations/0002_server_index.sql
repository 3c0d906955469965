-- 0002: filter the log by server page by page. An index on (server) keeps
-- each server's rows in rowid order, so "server = ? AND id < ?" pages
-- without sorting; (server, tool) made SQLite sort every match per page.
DROP INDEX IF EXISTS events_server_tool;
CREATE INDEX events_server ON events(server);
