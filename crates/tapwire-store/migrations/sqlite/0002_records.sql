-- Append-only records (the audit trail), kept apart from the documents the state loads.
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    account TEXT,
    action TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX records_by_kind_time ON records (kind, at);
CREATE INDEX records_by_kind_account ON records (kind, account, id);
