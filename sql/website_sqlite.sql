-- The website's registration store on SQLite (the embedded default). Safe to run more than once.
-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'; dates are 'YYYY-MM-DD' at the hospital.
CREATE TABLE IF NOT EXISTS online_registrations (
    id                 varchar(64)  PRIMARY KEY,
    created_at         timestamp    NOT NULL DEFAULT (datetime('now')),
    nik                varchar(16),
    full_name          varchar(100),
    birth_date         date,
    gender             varchar(16),
    phone              varchar(20),
    address            text,
    birth_place        varchar(50),
    mother_name        varchar(100),
    email              varchar(100),
    poliklinik         varchar(50),
    doctor             varchar(50),
    visit_date         date,
    payment            varchar(16),
    bpjs_number        varchar(13),
    local_queue_number varchar(20),
    status             varchar(20)  NOT NULL DEFAULT 'pending',
    attempts           integer      NOT NULL DEFAULT 0,
    error_code         varchar(40),
    last_error         text,
    next_attempt_at    timestamp,
    no_rkm_medis       varchar(15),
    no_rawat           varchar(17),
    no_reg             varchar(8),
    synced_at          timestamp
);
CREATE INDEX IF NOT EXISTS online_registrations_pending
    ON online_registrations (created_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS online_registrations_status ON online_registrations (status);
