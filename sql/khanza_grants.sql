-- Khanza Sync's own MariaDB user: only the rights the pipeline needs (least privilege).
--
-- Run as an administrator against the Khanza database, after `khanza-sync setup` has created
-- khanza_sync_ledger, khanza_sync_decisions and khanza_sync_schema (and again after an upgrade's setup):
--     mysql -u root -p sik < sql/khanza_grants.sql
-- First replace NULL below with the password in quotes (from your password manager; never commit it).
-- Left as NULL the script stops at the first PREPARE, so a user without password cannot be made.
-- Then set KHANZA_DB_USER=khanza_sync and KHANZA_DB_PASSWORD in the pipeline's .env / environment.
--
-- Rotate the password later with:  ALTER USER 'khanza_sync'@'%' IDENTIFIED BY '<new>';  (and @'localhost')
-- Not granted on purpose: DROP, CREATE, ALTER, DELETE (except Khanza's one-row counter and cancelled
-- bookings), FILE, PROCESS, SUPER, GRANT OPTION, and any access to other databases.
SET @khanza_sync_password = NULL;

SET @ddl = CONCAT('CREATE USER IF NOT EXISTS ''khanza_sync''@''%'' IDENTIFIED BY ', QUOTE(@khanza_sync_password));
PREPARE create_user FROM @ddl;
EXECUTE create_user;
DEALLOCATE PREPARE create_user;
SET @ddl = CONCAT('CREATE USER IF NOT EXISTS ''khanza_sync''@''localhost'' IDENTIFIED BY ', QUOTE(@khanza_sync_password));
PREPARE create_user FROM @ddl;
EXECUTE create_user;
DEALLOCATE PREPARE create_user;
SET @khanza_sync_password = NULL;
SET @ddl = NULL;

-- Master data the pipeline reads (khanza/masterdata.py, patients.match)
GRANT SELECT ON poliklinik TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON dokter TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON spesialis TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';  -- publish_master_data: specialty names
GRANT SELECT ON penjab TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON jadwal TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON suku_bangsa TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON bahasa_pasien TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON cacat_fisik TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON perusahaan_pasien TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON set_urut_no_rkm_medis TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
-- The desk's registration checks (khanza/registration.py desk_refusal): open inpatient stays and whether
-- cashier closing is required. On an older Khanza without one of these tables, leave its line out.
GRANT SELECT ON kamar_inap TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT ON set_validasi_registrasi TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';

-- Region names: a new patient's village, district, regency and province are found by name or added once, as
-- Khanza's own new-patient paths do (khanza/regions.py); existing rows are never changed.
GRANT SELECT, INSERT ON kelurahan TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT, INSERT ON kecamatan TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT, INSERT ON kabupaten TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT, INSERT ON propinsi TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';

-- Patients: found by NIK, created new; an existing patient is never overwritten, only `umur` is
-- refreshed after a visit (as the desktop does), so UPDATE is limited to that one column.
GRANT SELECT, INSERT ON pasien TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT UPDATE (umur) ON pasien TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';

-- Visits and bookings: inserted, and renumbered when the desk took the same queue number meanwhile. A
-- cancelled booking is deleted, as Khanza's booking dialogs do (reconcile, khanza/cancellation.py).
GRANT SELECT, INSERT, UPDATE ON reg_periksa TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE ON booking_registrasi TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';

-- Khanza's medical-record counter: read FOR UPDATE, then replaced the way Khanza does it
-- (DELETE + INSERT of the single row).
GRANT SELECT, INSERT, UPDATE, DELETE ON set_no_rkm_medis TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';

-- The pipeline's own ledger (created by `python -m khanza.setup` with an administrator account)
GRANT SELECT, INSERT, UPDATE ON khanza_sync_ledger TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';

-- Staff decisions about single registrations (khanza/decisions.py; created by `khanza-sync setup` next to the
-- ledger): appended by the fix flows and read by the loader. Rows are never changed or deleted (the audit).
GRANT SELECT, INSERT ON khanza_sync_decisions TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';

-- The schema version of the tables above (khanza/migrations.py): every run reads it and refuses a schema older
-- or newer than its release; only `khanza-sync setup` writes it.
GRANT SELECT ON khanza_sync_schema TO 'khanza_sync'@'%', 'khanza_sync'@'localhost';
