-- Khanza Sync's own MySQL/MariaDB user on the website database: read registrations, write back
-- statuses and Khanza's numbers. Nothing else (least privilege).
-- Generated from website/schema.py by `python -m website.schema --write`: edit the definitions there,
-- not this file.
--
-- Run as an administrator, once, in the website's database, after sql/website_mysql.sql and
-- sql/website_master_mysql.sql:
--     mysql -u root -p website < sql/website_grants_mysql.sql
-- First replace NULL below with the password in quotes (from your password manager; never commit it).
-- Left as NULL the script stops at the first PREPARE, so a user without password cannot be made.
-- Then WEBSITE_DB_URL=mysql+pymysql://khanza_sync:<password>@<host>:3306/website in .env only.
-- '%' is any address: write the hospital's address instead where you can (here and in every GRANT).
-- A table made otherwise (e.g. a Laravel migration) without claim_token: leave claim_token out below
-- (it is used only on servers without FOR UPDATE SKIP LOCKED: MariaDB before 10.6, MySQL before 8.0.1).
--
-- Rotate:  ALTER USER 'khanza_sync'@'%' IDENTIFIED BY '<new>';  then update WEBSITE_DB_URL and restart the worker.
-- Not granted: INSERT or DELETE on registrations, DROP, ALTER, CREATE, UPDATE of what the patient typed (nik,
-- names, birth date, phone, address...), any other database.
SET @khanza_sync_password = NULL;

SET @ddl = CONCAT('CREATE USER IF NOT EXISTS ''khanza_sync''@''%'' IDENTIFIED BY ', QUOTE(@khanza_sync_password));
PREPARE create_user FROM @ddl;
EXECUTE create_user;
DEALLOCATE PREPARE create_user;
SET @khanza_sync_password = NULL;
SET @ddl = NULL;

-- website/store.py: the claim (FOR UPDATE SKIP LOCKED, or claim_token), count_due, fetch_rows read the table.
GRANT SELECT ON online_registrations TO 'khanza_sync'@'%';

-- claim lease, write_outcomes and defer_due touch only the pipeline's own columns; reconcile also writes
-- back a visit the desk moved (doctor, clinic, date).
GRANT UPDATE (status, attempts, error_code, last_error, next_attempt_at, no_rkm_medis, no_rawat, no_reg, synced_at,
              doctor, poliklinik, visit_date, claim_token)
    ON online_registrations TO 'khanza_sync'@'%';

-- publish_master_data replaces the rows of the website's copy of Khanza's master data (tables created by an
-- administrator).
GRANT SELECT, INSERT, DELETE ON khanza_clinics TO 'khanza_sync'@'%';
GRANT SELECT, INSERT, DELETE ON khanza_doctors TO 'khanza_sync'@'%';
GRANT SELECT, INSERT, DELETE ON khanza_schedules TO 'khanza_sync'@'%';
GRANT SELECT, INSERT, DELETE ON khanza_quota TO 'khanza_sync'@'%';
GRANT SELECT, INSERT, DELETE ON khanza_regions TO 'khanza_sync'@'%';
