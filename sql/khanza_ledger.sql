-- Khanza Sync's own table in the Khanza database (like Khanza's referensi_mobilejkn_bpjs).
-- One row per website registration, written in the same transaction as the visit or booking:
-- the unique key on registration_id is what makes a registration land in Khanza at most once.
-- Safe to run more than once (`python -m khanza.setup` runs it).
CREATE TABLE IF NOT EXISTS khanza_sync_ledger (
  registration_id varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  outcome enum('created','duplicate') NOT NULL,
  target enum('reg_periksa','booking') NOT NULL,
  no_rkm_medis varchar(15) NOT NULL,
  no_rawat varchar(17) DEFAULT NULL,
  no_reg varchar(8) NOT NULL,
  kd_poli char(5) NOT NULL,
  kd_dokter varchar(20) NOT NULL,
  tanggal date NOT NULL,
  patient_created tinyint(1) NOT NULL DEFAULT 0,
  created_at datetime NOT NULL,
  PRIMARY KEY (registration_id),
  KEY khanza_sync_ledger_day (tanggal, kd_dokter),
  KEY khanza_sync_ledger_rawat (no_rawat)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
