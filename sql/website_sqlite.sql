-- The website's registration store on SQLite (the embedded default).
-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'; dates are 'YYYY-MM-DD' at the hospital.
-- Generated from website/schema.py by `python -m website.schema --write`: edit the definitions there,
-- not this file. Safe to run more than once.
CREATE TABLE IF NOT EXISTS online_registrations (
    id VARCHAR(64),
    created_at TIMESTAMP DEFAULT (datetime('now')) NOT NULL,
    nik VARCHAR(16),
    full_name VARCHAR(100),
    birth_date DATE,
    gender VARCHAR(16),
    phone VARCHAR(20),
    address TEXT,
    birth_place VARCHAR(50),
    mother_name VARCHAR(100),
    email VARCHAR(100),
    poliklinik VARCHAR(50),
    doctor VARCHAR(50),
    visit_date DATE,
    payment VARCHAR(16),
    bpjs_number VARCHAR(13),
    local_queue_number VARCHAR(20),
    status VARCHAR(20) DEFAULT 'pending' NOT NULL,
    attempts INTEGER DEFAULT 0 NOT NULL,
    error_code VARCHAR(40),
    last_error TEXT,
    next_attempt_at TIMESTAMP,
    no_rkm_medis VARCHAR(15),
    no_rawat VARCHAR(17),
    no_reg VARCHAR(8),
    synced_at TIMESTAMP,
    village_code VARCHAR(13),
    village VARCHAR(100),
    district_code VARCHAR(13),
    district VARCHAR(100),
    regency_code VARCHAR(13),
    regency VARCHAR(100),
    province_code VARCHAR(13),
    province VARCHAR(100),
    PRIMARY KEY (id)
);
-- The pipeline's claim query reads pending rows oldest first.
CREATE INDEX IF NOT EXISTS online_registrations_pending ON online_registrations (created_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS online_registrations_status ON online_registrations (status);
