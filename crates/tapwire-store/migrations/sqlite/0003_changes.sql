-- The change feed: which documents each commit touched, so a reader that fell behind
-- reads only those. It is complete from meta.feed_start on (a store made before the feed
-- starts it at the revision it had).
CREATE TABLE changes (
    revision INTEGER NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL
);
CREATE INDEX changes_by_revision ON changes (revision);
INSERT INTO meta (key, value) SELECT 'feed_start', value FROM meta WHERE key = 'revision';
