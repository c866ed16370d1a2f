-- Agents' telemetry shared between replicas: the latest per interface, outside the
-- revision. `seq` orders writes so a replica reads only rows written since it last looked.
CREATE SEQUENCE tapwire_telemetry_seq;
CREATE TABLE tapwire_telemetry (
    key  TEXT PRIMARY KEY,
    at   DOUBLE PRECISION NOT NULL,
    seq  BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX tapwire_telemetry_by_seq ON tapwire_telemetry (seq);
