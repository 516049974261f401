-- Khanza Sync's own table in the Khanza database (like Khanza's referensi_mobilejkn_bpjs).
-- One row per website registration, written in the same transaction as the visit or booking:
-- the unique key on registration_id is what makes a registration land in Khanza at most once.
-- cancel_result / cancel_decided_at: reconcile's decision on the website's cancellation of this registration
-- (an ErrorCode such as CANCELLED or CANCEL_REFUSED_SERVED; UTC), written in the transaction that carried it out:
-- a later run never acts on it again. An installation made before they existed gets them from
-- `khanza-sync setup` (khanza/migrations.py, step 2: ADD COLUMN, nothing dropped or rewritten).
-- created_at is UTC (like every audit time of Khanza Sync); created_utc_offset is how many minutes the hospital's
-- clock (HOSPITAL_TIMEZONE) was ahead of UTC then, so created_at + offset is the booking's own tanggal_booking /
-- jam_booking (khanza/ledger.py written_local). Rows of releases that wrote hospital time are converted once by
-- `khanza-sync setup` (khanza/migrations.py, step 3), which sets their offset: a row is never converted twice.
-- tanggal is the visit day, hospital time, as Khanza has it.
-- Safe to run more than once (`khanza-sync setup` runs it).
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
  cancel_result varchar(40) DEFAULT NULL,
  cancel_decided_at datetime DEFAULT NULL,
  created_utc_offset smallint DEFAULT NULL,
  PRIMARY KEY (registration_id),
  KEY khanza_sync_ledger_day (tanggal, kd_dokter),
  KEY khanza_sync_ledger_rawat (no_rawat)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

-- Staff decisions about single registrations (khanza/decisions.py, flows/fix_registrations.py): who re-queued
-- a registration or resolved its PATIENT_CONFLICT, when, why. Append-only: the latest link_patient/new_patient
-- row of a registration is the one the loader follows. `findings` holds field names only (e.g. "nik differs,
-- bpjs card differs"), never values. decided_at is UTC. decided_by is what staff typed (Prefect's open-source
-- server has no user accounts); run_by is what the machine can vouch for: the Prefect flow run and deployment,
-- and the Unix user and host of the process that wrote the row (khanza_sync/fixes.py run_by). Read it with `khanza-sync audit` or:
--   SELECT * FROM khanza_sync_decisions WHERE registration_id = '...' ORDER BY id;
CREATE TABLE IF NOT EXISTS khanza_sync_decisions (
  id bigint NOT NULL AUTO_INCREMENT,
  registration_id varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  action enum('requeue','link_patient','new_patient') NOT NULL,
  no_rkm_medis varchar(15) DEFAULT NULL,
  decided_by varchar(100) CHARACTER SET utf8mb4 NOT NULL,
  reason varchar(500) CHARACTER SET utf8mb4 NOT NULL,
  decided_at datetime NOT NULL,
  flow_run_id varchar(36) DEFAULT NULL,
  findings varchar(255) DEFAULT NULL,
  run_by varchar(255) DEFAULT NULL,
  PRIMARY KEY (id),
  KEY khanza_sync_decisions_registration (registration_id, id),
  KEY khanza_sync_decisions_time (decided_at)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

-- Which schema version of these tables is installed (khanza/migrations.py; `khanza-sync setup` upgrades in place).
CREATE TABLE IF NOT EXISTS khanza_sync_schema (
  component varchar(20) NOT NULL,
  version int NOT NULL,
  upgraded_at datetime NOT NULL COMMENT 'UTC',
  PRIMARY KEY (component)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;
