-- The website's registration store on MySQL or MariaDB: MariaDB 10.2.1+ or MySQL 8.0.13+ (the UTC default
-- of created_at is an expression). Run it in the website's database: mysql -u root -p website < this file.
-- Timestamps are UTC DATETIME(6) (not TIMESTAMP: no time-zone conversion); dates are calendar dates at the
-- hospital. InnoDB and utf8mb4, so any script and emoji is kept. The indexes are inside CREATE TABLE.
-- Generated from website/schema.py by `python -m website.schema --write`: edit the definitions there,
-- not this file. Safe to run more than once.
-- online_registrations_pending: the claim and follow mode's poll read pending rows oldest first; queue-status and reconcile read by status
CREATE TABLE IF NOT EXISTS online_registrations (
    id VARCHAR(64),
    created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
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
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    error_code VARCHAR(40),
    last_error TEXT,
    next_attempt_at DATETIME(6),
    no_rkm_medis VARCHAR(15),
    no_rawat VARCHAR(17),
    no_reg VARCHAR(8),
    synced_at DATETIME(6),
    village_code VARCHAR(13),
    village VARCHAR(100),
    district_code VARCHAR(13),
    district VARCHAR(100),
    regency_code VARCHAR(13),
    regency VARCHAR(100),
    province_code VARCHAR(13),
    province VARCHAR(100),
    claim_token VARCHAR(32),
    PRIMARY KEY (id),
    KEY online_registrations_pending (status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;
