-- Khanza Sync's own PostgreSQL role on the website database: read registrations, write back
-- statuses and Khanza's numbers. Nothing else (least privilege).
-- Generated from website/schema.py by `python -m website.schema --write`: edit the definitions there,
-- not this file.
--
-- Run as the database owner, once, after sql/website_postgresql.sql and sql/website_master_postgresql.sql:
--     psql -d website -v khanza_sync_password="$KHANZA_SYNC_WEB_PASSWORD" -f sql/website_grants_postgresql.sql
-- (the password comes from your password manager via the environment; never write it into this file).
-- Then WEBSITE_DB_URL=postgresql+psycopg://khanza_sync:<password>@<host>:5432/website in .env only.
-- With row-level security on online_registrations (Supabase), also give this role its policy: docs/website.md.
--
-- Rotate:  ALTER ROLE khanza_sync PASSWORD '<new>';  then update WEBSITE_DB_URL and restart the worker.
-- Not granted: INSERT or DELETE on registrations, TRUNCATE, DDL, UPDATE of what the patient typed (nik, names,
-- birth date, phone, address...).
CREATE ROLE khanza_sync LOGIN PASSWORD :'khanza_sync_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;

GRANT CONNECT ON DATABASE :"DBNAME" TO khanza_sync;
GRANT USAGE ON SCHEMA public TO khanza_sync;

-- website/store.py: claim_pending, count_due, fetch_rows read the table (FOR UPDATE SKIP LOCKED needs
-- an UPDATE right too, which the column grant below gives).
GRANT SELECT ON online_registrations TO khanza_sync;

-- claim lease, write_outcomes and defer_due touch only the pipeline's own columns; reconcile also writes
-- back a visit the desk moved (doctor, clinic, date).
GRANT UPDATE (status, attempts, error_code, last_error, next_attempt_at, no_rkm_medis, no_rawat, no_reg, synced_at,
              doctor, poliklinik, visit_date)
    ON online_registrations TO khanza_sync;

-- publish_master_data replaces the rows of the website's copy of Khanza's master data (tables created by the owner).
GRANT SELECT, INSERT, DELETE ON khanza_clinics, khanza_doctors, khanza_schedules, khanza_quota, khanza_regions TO khanza_sync;
