-- The same shape as the SQLite store's, in one migration: documents keyed by (kind, id),
-- the revision and the feed's start in meta, the change feed, append-only records.
CREATE TABLE tapwire_documents (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
INSERT INTO tapwire_meta (key, value) VALUES ('revision', 0), ('feed_start', 0);
CREATE TABLE tapwire_changes (
    revision BIGINT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL
);
CREATE INDEX tapwire_changes_by_revision ON tapwire_changes (revision);
CREATE TABLE tapwire_records (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    account TEXT,
    action TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX tapwire_records_by_kind_time ON tapwire_records (kind, at);
CREATE INDEX tapwire_records_by_kind_account ON tapwire_records (kind, account, id);
