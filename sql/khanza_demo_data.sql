-- Demo master data for a Khanza test/demo database (not real hospital data): the '-' placeholder rows
-- Khanza relies on, the ten clinics the website offers, one doctor per clinic plus a few for edge cases,
-- weekly schedules with quotas, payers, and Khanza's numbering settings rows.
SET SQL_MODE='NO_AUTO_VALUE_ON_ZERO,STRICT_TRANS_TABLES';
INSERT INTO propinsi VALUES (1,'-'),(3,'JAWA TENGAH');
INSERT INTO kabupaten VALUES (1,'-'),(2,'KLATEN');
INSERT INTO kecamatan VALUES (1,'-'),(2,'KLATEN UTARA');
INSERT INTO kelurahan VALUES (1,'-'),(3,'DUKUH');
INSERT INTO penjab VALUES ('-','-','-','-','-','','1'),('A09','UMUM','-','-','-','-','1'),
  ('BPJ','BPJS','-','-','-','-','1'),('A92','ASURANSI','-','-','-','-','1'),('X01','LAMA','-','-','-','-','0');
INSERT INTO perusahaan_pasien VALUES ('-','-','-','-','0');
INSERT INTO suku_bangsa VALUES (1,'-'),(5,'JAWA');
INSERT INTO bahasa_pasien VALUES (1,'-'),(5,'INDONESIA');
INSERT INTO cacat_fisik VALUES (1,'-'),(5,'TIDAK ADA');
INSERT INTO spesialis VALUES ('-','-'),('S0001','Penyakit Dalam');
INSERT INTO poliklinik VALUES ('-','-',0,0,'1'),
  ('INT','Poli Penyakit Dalam',15000,10000,'1'),('BEDAH','Poli Bedah',15000,10000,'1'),
  ('ANAK','Poli Anak',15000,10000,'1'),('OBG','Poli Kandungan (Obstetri Ginekologi)',15000,10000,'1'),
  ('MATA','Poli Mata',15000,10000,'1'),('KULIT','Poli Kulit dan Kelamin',15000,10000,'1'),
  ('SARAF','Poli Saraf',15000,10000,'1'),('ORTHO','Poli Orthopedi',15000,10000,'1'),
  ('GIGI','Poli Gigi',15000,10000,'1'),('THT','Poli THT',15000,10000,'1'),('LAMA','Poli Tutup',0,0,'0');
INSERT INTO dokter (kd_dokter,nm_dokter,jk,email,kd_sps,status) VALUES
  ('-','-','L','','-','1'),
  ('D001','dr. Ahmad, Sp.PD','L','','S0001','1'),('D002','dr. Budi, Sp.B','L','','-','1'),
  ('D003','dr. Citra, Sp.A','P','','-','1'),('D004','dr. Dewi, Sp.OG','P','','-','1'),
  ('D005','dr. Eko, Sp.M','L','','-','1'),('D006','dr. Fitri, Sp.KK','P','','-','1'),
  ('D007','dr. Gunawan, Sp.N','L','','-','1'),('D008','dr. Hana, Sp.OT','P','','-','1'),
  ('D009','drg. Indra','L','','-','1'),('D010','dr. Joko, Sp.THT','L','','-','1'),
  ('D011','dr. Kartika, Sp.PD','P','','S0001','1'),('D012','dr. Lukman, Sp.PD','L','','S0001','1'),
  ('D099','dr. Pensiun','L','','-','0');
-- Every clinic doctor practises every day (so demo dates always work), quota 30.
INSERT INTO jadwal (kd_dokter,hari_kerja,jam_mulai,jam_selesai,kd_poli,kuota)
SELECT d.kd_dokter, h.hari, '08:00:00', '14:00:00', d.kd_poli, 30 FROM
 (SELECT 'D001' kd_dokter,'INT' kd_poli UNION ALL SELECT 'D002','BEDAH' UNION ALL SELECT 'D003','ANAK'
  UNION ALL SELECT 'D004','OBG' UNION ALL SELECT 'D005','MATA' UNION ALL SELECT 'D006','KULIT'
  UNION ALL SELECT 'D007','SARAF' UNION ALL SELECT 'D008','ORTHO' UNION ALL SELECT 'D009','GIGI'
  UNION ALL SELECT 'D010','THT' UNION ALL SELECT 'D011','INT') d
 CROSS JOIN (SELECT 'SENIN' hari UNION ALL SELECT 'SELASA' UNION ALL SELECT 'RABU' UNION ALL SELECT 'KAMIS'
  UNION ALL SELECT 'JUMAT' UNION ALL SELECT 'SABTU' UNION ALL SELECT 'AKHAD') h;
-- D012 practises only on Wednesdays, with a quota of 2 (edge cases for schedule and quota).
INSERT INTO jadwal VALUES ('D012','RABU','08:00:00','12:00:00','INT',2);
INSERT INTO set_no_rkm_medis VALUES ('000100');
INSERT INTO set_urut_no_rkm_medis VALUES ('Straight','No','No','Depan');
-- Khanza's own placeholder patient, and one existing patient registered at the desk years ago.
INSERT INTO pasien VALUES
 ('-','-','-','L','-','2022-08-03','-','','-','-','MENIKAH','ISLAM','2022-08-03','-','0 Th','-','SAUDARA','-','-','-',1,1,1,'-','ALAMAT','KELURAHAN','KECAMATAN','KABUPATEN','-',1,1,1,'-','-',1,'PROPINSI'),
 ('000050','SITI AMINAH','3310014107800001','P','KLATEN','1980-07-01','SUMIRAH','JL. MERAPI 10','-','-','MENIKAH','ISLAM','2020-01-15','081234500001','40 Th 0 Bl 0 Hr','-','SUAMI','AHMAD','BPJ','0001234567890',3,2,2,'-','JL. MERAPI 10','DUKUH','KLATEN UTARA','KLATEN','-',5,5,5,'-','-',3,'JAWA TENGAH');
