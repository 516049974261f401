-- Khanza master data published for the website (SQLite). Written only by the publish-master-data
-- flow, which replaces every table's rows in one transaction.
-- published_at is UTC text; visit_date is YYYY-MM-DD at the hospital.
-- Generated from website/schema.py by `python -m website.schema --write`: edit the definitions there,
-- not this file. Safe to run more than once.
CREATE TABLE IF NOT EXISTS khanza_clinics (
    kd_poli VARCHAR(5),
    nm_poli VARCHAR(50),
    slug VARCHAR(50),
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kd_poli)
);
CREATE TABLE IF NOT EXISTS khanza_doctors (
    kd_dokter VARCHAR(20),
    nm_dokter VARCHAR(50),
    kd_sps VARCHAR(5),
    nm_sps VARCHAR(30),
    slug VARCHAR(50),
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kd_dokter)
);
-- Weekly sessions: hari_kerja is Khanza's SENIN..SABTU, AKHAD (Sunday).
CREATE TABLE IF NOT EXISTS khanza_schedules (
    kd_dokter VARCHAR(20) NOT NULL,
    kd_poli VARCHAR(5) NOT NULL,
    hari_kerja VARCHAR(6) NOT NULL,
    jam_mulai VARCHAR(8) NOT NULL,
    jam_selesai VARCHAR(8),
    kuota INTEGER,
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kd_dokter, hari_kerja, jam_mulai)
);
-- One row per upcoming day and doctor+clinic with a session that weekday.
CREATE TABLE IF NOT EXISTS khanza_quota (
    visit_date DATE NOT NULL,
    kd_dokter VARCHAR(20) NOT NULL,
    kd_poli VARCHAR(5) NOT NULL,
    hari_kerja VARCHAR(6) NOT NULL,
    kuota INTEGER NOT NULL,
    registered INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (visit_date, kd_dokter, kd_poli)
);
-- The region names Khanza knows (level: village, district, regency or province; id: Khanza's kd_kel, kd_kec, kd_kab or kd_prop), for a form that offers them.
CREATE TABLE IF NOT EXISTS khanza_regions (
    level VARCHAR(10) NOT NULL,
    id INTEGER NOT NULL,
    name VARCHAR(60) NOT NULL,
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (level, id)
);
