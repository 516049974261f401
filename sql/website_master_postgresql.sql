-- Khanza master data published for the website (PostgreSQL). Written only by the publish-master-data
-- flow, which replaces every table's rows in one transaction. Safe to run more than once.
-- published_at is UTC without time zone; visit_date is a calendar date at the hospital.
CREATE TABLE IF NOT EXISTS khanza_clinics (
    kd_poli      varchar(5)   PRIMARY KEY,
    nm_poli      varchar(50),
    slug         varchar(50),
    published_at timestamp    NOT NULL
);
CREATE TABLE IF NOT EXISTS khanza_doctors (
    kd_dokter    varchar(20)  PRIMARY KEY,
    nm_dokter    varchar(50),
    kd_sps       varchar(5),
    nm_sps       varchar(30),
    slug         varchar(50),
    published_at timestamp    NOT NULL
);
-- Weekly sessions: hari_kerja is Khanza's SENIN..SABTU, AKHAD (Sunday).
CREATE TABLE IF NOT EXISTS khanza_schedules (
    kd_dokter    varchar(20)  NOT NULL,
    kd_poli      varchar(5)   NOT NULL,
    hari_kerja   varchar(6)   NOT NULL,
    jam_mulai    varchar(8)   NOT NULL,
    jam_selesai  varchar(8),
    kuota        integer,
    published_at timestamp    NOT NULL,
    PRIMARY KEY (kd_dokter, hari_kerja, jam_mulai)
);
-- One row per upcoming day and doctor+clinic with a session that weekday.
CREATE TABLE IF NOT EXISTS khanza_quota (
    visit_date   date         NOT NULL,
    kd_dokter    varchar(20)  NOT NULL,
    kd_poli      varchar(5)   NOT NULL,
    hari_kerja   varchar(6)   NOT NULL,
    kuota        integer      NOT NULL,
    registered   integer      NOT NULL,
    remaining    integer      NOT NULL,
    published_at timestamp    NOT NULL,
    PRIMARY KEY (visit_date, kd_dokter, kd_poli)
);
