-- An OLDER SIMRS Khanza schema for Khanza Sync's compatibility test (tests/flows/test_older_schema.py): the tables
-- the pipeline reads and writes, as an installation of about 2020 has them.
--
-- Source of the older definitions: the sik.sql carried by the public fork muannas/khanza at commit
-- 9cc6034ed8dbfb32620ec5887add456d2b72b4bd (a structure-only HeidiSQL 11.0 dump of a Khanza database on
-- MariaDB 10.1.44), i.e. Khanza's own sik.sql as it stood when that hospital forked. Taken from it (trimmed to the
-- columns, keys and foreign keys the pipeline relies on; no other table copied):
--   penjab  - no `status` column yet (every payer counts as active);
--   pasien  - keluarga enum without 'DIRI SENDIRI' / 'LAIN-LAIN', pekerjaan varchar(35), umur varchar(20).
-- Left out, as releases before these settings existed lack them (the shared reference's README: derive an older
-- variant by removing what newer releases added): set_urut_no_rkm_medis (-> Straight numbering, no year/month),
-- set_validasi_registrasi (-> cashier closing not required) and the inpatient tables kamar_inap/kamar/bangsal
-- (-> no admitted-patient check). Their absence in that fork's dump was not checked table by table.
-- Every other table below is as in sql/khanza_fixture_schema.sql.
-- Generated from sql/khanza_fixture_schema.sql with the two definitions above replaced; regenerate the same way.
SET FOREIGN_KEY_CHECKS=0;

CREATE TABLE propinsi (kd_prop int(11) NOT NULL AUTO_INCREMENT, nm_prop varchar(30) NOT NULL,
  PRIMARY KEY (kd_prop), UNIQUE KEY nm_prop (nm_prop)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE kabupaten (kd_kab int(11) NOT NULL AUTO_INCREMENT, nm_kab varchar(60) NOT NULL,
  PRIMARY KEY (kd_kab), UNIQUE KEY nm_kab (nm_kab)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE kecamatan (kd_kec int(11) NOT NULL AUTO_INCREMENT, nm_kec varchar(60) NOT NULL,
  PRIMARY KEY (kd_kec), UNIQUE KEY nm_kec (nm_kec)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE kelurahan (kd_kel int(11) NOT NULL AUTO_INCREMENT, nm_kel varchar(60) NOT NULL,
  PRIMARY KEY (kd_kel), UNIQUE KEY nm_kel (nm_kel)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE penjab (
  kd_pj char(3) NOT NULL, png_jawab varchar(30) NOT NULL, nama_perusahaan varchar(60) NOT NULL,
  alamat_asuransi varchar(130) NOT NULL, no_telp varchar(40) NOT NULL, attn varchar(60) NOT NULL,
  PRIMARY KEY (kd_pj)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE perusahaan_pasien (kode_perusahaan varchar(8) NOT NULL, nama_perusahaan varchar(70) DEFAULT NULL,
  alamat varchar(100) DEFAULT NULL, kota varchar(40) DEFAULT NULL, no_telp varchar(27) DEFAULT NULL,
  PRIMARY KEY (kode_perusahaan)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE suku_bangsa (id int(11) NOT NULL AUTO_INCREMENT, nama_suku_bangsa varchar(30) DEFAULT NULL,
  PRIMARY KEY (id), UNIQUE KEY nama_suku_bangsa (nama_suku_bangsa)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE bahasa_pasien (id int(11) NOT NULL AUTO_INCREMENT, nama_bahasa varchar(30) DEFAULT NULL,
  PRIMARY KEY (id), UNIQUE KEY nama_bahasa (nama_bahasa)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE cacat_fisik (id int(11) NOT NULL AUTO_INCREMENT, nama_cacat varchar(30) NOT NULL,
  PRIMARY KEY (id), UNIQUE KEY nama_cacat (nama_cacat)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE spesialis (kd_sps char(5) NOT NULL DEFAULT '', nm_sps varchar(30) DEFAULT NULL,
  PRIMARY KEY (kd_sps)) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE dokter (
  kd_dokter varchar(20) NOT NULL, nm_dokter varchar(50) DEFAULT NULL, jk enum('L','P') DEFAULT NULL,
  tmp_lahir varchar(20) DEFAULT NULL, tgl_lahir date DEFAULT NULL, gol_drh enum('A','B','O','AB','-') DEFAULT NULL,
  agama varchar(12) DEFAULT NULL, almt_tgl varchar(60) DEFAULT NULL, no_telp varchar(13) DEFAULT NULL,
  email varchar(70) NOT NULL, stts_nikah enum('BELUM MENIKAH','MENIKAH','JANDA','DUDHA','JOMBLO') DEFAULT NULL,
  kd_sps char(5) DEFAULT NULL, alumni varchar(60) DEFAULT NULL, no_ijn_praktek varchar(120) DEFAULT NULL,
  status enum('0','1') NOT NULL,
  PRIMARY KEY (kd_dokter), KEY kd_sps (kd_sps), KEY status (status),
  CONSTRAINT dokter_ibfk_2 FOREIGN KEY (kd_sps) REFERENCES spesialis (kd_sps) ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE poliklinik (
  kd_poli char(5) NOT NULL DEFAULT '', nm_poli varchar(50) DEFAULT NULL, registrasi double NOT NULL,
  registrasilama double NOT NULL, status enum('0','1') NOT NULL, PRIMARY KEY (kd_poli)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE jadwal (
  kd_dokter varchar(20) NOT NULL,
  hari_kerja enum('SENIN','SELASA','RABU','KAMIS','JUMAT','SABTU','AKHAD') NOT NULL DEFAULT 'SENIN',
  jam_mulai time NOT NULL DEFAULT '00:00:00', jam_selesai time DEFAULT NULL, kd_poli char(5) DEFAULT NULL,
  kuota int(11) DEFAULT NULL,
  PRIMARY KEY (kd_dokter, hari_kerja, jam_mulai), KEY kd_dokter (kd_dokter), KEY kd_poli (kd_poli),
  CONSTRAINT jadwal_ibfk_1 FOREIGN KEY (kd_dokter) REFERENCES dokter (kd_dokter) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT jadwal_ibfk_2 FOREIGN KEY (kd_poli) REFERENCES poliklinik (kd_poli) ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE pasien (
  no_rkm_medis varchar(15) NOT NULL, nm_pasien varchar(40) DEFAULT NULL, no_ktp varchar(20) DEFAULT NULL,
  jk enum('L','P') DEFAULT NULL, tmp_lahir varchar(15) DEFAULT NULL, tgl_lahir date DEFAULT NULL,
  nm_ibu varchar(40) NOT NULL, alamat varchar(200) DEFAULT NULL, gol_darah enum('A','B','O','AB','-') DEFAULT NULL,
  pekerjaan varchar(35) DEFAULT NULL, stts_nikah enum('BELUM MENIKAH','MENIKAH','JANDA','DUDHA','JOMBLO') DEFAULT NULL,
  agama varchar(12) DEFAULT NULL, tgl_daftar date DEFAULT NULL, no_tlp varchar(40) DEFAULT NULL,
  umur varchar(20) NOT NULL,
  pnd enum('TS','TK','SD','SMP','SMA','SLTA/SEDERAJAT','D1','D2','D3','D4','S1','S2','S3','-') NOT NULL,
  keluarga enum('AYAH','IBU','ISTRI','SUAMI','SAUDARA','ANAK') DEFAULT NULL,
  namakeluarga varchar(50) NOT NULL, kd_pj char(3) NOT NULL, no_peserta varchar(25) DEFAULT NULL,
  kd_kel int(11) NOT NULL, kd_kec int(11) NOT NULL, kd_kab int(11) NOT NULL, pekerjaanpj varchar(35) NOT NULL,
  alamatpj varchar(100) NOT NULL, kelurahanpj varchar(60) NOT NULL, kecamatanpj varchar(60) NOT NULL,
  kabupatenpj varchar(60) NOT NULL, perusahaan_pasien varchar(8) NOT NULL, suku_bangsa int(11) NOT NULL,
  bahasa_pasien int(11) NOT NULL, cacat_fisik int(11) NOT NULL, email varchar(50) NOT NULL,
  nip varchar(30) NOT NULL, kd_prop int(11) NOT NULL, propinsipj varchar(30) NOT NULL,
  PRIMARY KEY (no_rkm_medis), KEY kd_pj (kd_pj), KEY no_ktp (no_ktp), KEY no_peserta (no_peserta),
  CONSTRAINT pasien_ibfk_1 FOREIGN KEY (kd_pj) REFERENCES penjab (kd_pj) ON UPDATE CASCADE,
  CONSTRAINT pasien_ibfk_2 FOREIGN KEY (kd_kel) REFERENCES kelurahan (kd_kel) ON UPDATE CASCADE,
  CONSTRAINT pasien_ibfk_3 FOREIGN KEY (kd_kec) REFERENCES kecamatan (kd_kec) ON UPDATE CASCADE,
  CONSTRAINT pasien_ibfk_4 FOREIGN KEY (kd_kab) REFERENCES kabupaten (kd_kab) ON UPDATE CASCADE,
  CONSTRAINT pasien_ibfk_5 FOREIGN KEY (perusahaan_pasien) REFERENCES perusahaan_pasien (kode_perusahaan) ON UPDATE CASCADE,
  CONSTRAINT pasien_ibfk_6 FOREIGN KEY (suku_bangsa) REFERENCES suku_bangsa (id) ON UPDATE CASCADE,
  CONSTRAINT pasien_ibfk_7 FOREIGN KEY (bahasa_pasien) REFERENCES bahasa_pasien (id) ON UPDATE CASCADE,
  CONSTRAINT pasien_ibfk_8 FOREIGN KEY (cacat_fisik) REFERENCES cacat_fisik (id) ON UPDATE CASCADE,
  CONSTRAINT pasien_ibfk_9 FOREIGN KEY (kd_prop) REFERENCES propinsi (kd_prop) ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE reg_periksa (
  no_reg varchar(8) DEFAULT NULL, no_rawat varchar(17) NOT NULL, tgl_registrasi date DEFAULT NULL,
  jam_reg time DEFAULT NULL, kd_dokter varchar(20) DEFAULT NULL, no_rkm_medis varchar(15) DEFAULT NULL,
  kd_poli char(5) DEFAULT NULL, p_jawab varchar(100) DEFAULT NULL, almt_pj varchar(200) DEFAULT NULL,
  hubunganpj varchar(20) DEFAULT NULL, biaya_reg double DEFAULT NULL,
  stts enum('Belum','Sudah','Batal','Berkas Diterima','Dirujuk','Meninggal','Dirawat','Pulang Paksa') DEFAULT NULL,
  stts_daftar enum('-','Lama','Baru') NOT NULL, status_lanjut enum('Ralan','Ranap') NOT NULL,
  kd_pj char(3) NOT NULL, umurdaftar int(11) DEFAULT NULL, sttsumur enum('Th','Bl','Hr') DEFAULT NULL,
  status_bayar enum('Sudah Bayar','Belum Bayar') NOT NULL, status_poli enum('Lama','Baru') NOT NULL,
  PRIMARY KEY (no_rawat), KEY no_rkm_medis (no_rkm_medis), KEY kd_poli (kd_poli), KEY kd_pj (kd_pj),
  KEY kd_dokter (kd_dokter),
  CONSTRAINT reg_periksa_ibfk_3 FOREIGN KEY (kd_poli) REFERENCES poliklinik (kd_poli) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT reg_periksa_ibfk_4 FOREIGN KEY (kd_dokter) REFERENCES dokter (kd_dokter) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT reg_periksa_ibfk_6 FOREIGN KEY (kd_pj) REFERENCES penjab (kd_pj) ON UPDATE CASCADE,
  CONSTRAINT reg_periksa_ibfk_7 FOREIGN KEY (no_rkm_medis) REFERENCES pasien (no_rkm_medis) ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE booking_registrasi (
  tanggal_booking date DEFAULT NULL, jam_booking time DEFAULT NULL, no_rkm_medis varchar(15) NOT NULL,
  tanggal_periksa date NOT NULL, kd_dokter varchar(20) DEFAULT NULL, kd_poli varchar(5) DEFAULT NULL,
  no_reg varchar(8) DEFAULT NULL, kd_pj char(3) DEFAULT NULL, limit_reg int(1) DEFAULT NULL,
  waktu_kunjungan datetime DEFAULT NULL, status enum('Terdaftar','Belum','Batal','Dokter Berhalangan') DEFAULT NULL,
  PRIMARY KEY (no_rkm_medis, tanggal_periksa), KEY kd_dokter (kd_dokter), KEY kd_poli (kd_poli), KEY kd_pj (kd_pj),
  CONSTRAINT booking_registrasi_ibfk_1 FOREIGN KEY (kd_dokter) REFERENCES dokter (kd_dokter) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT booking_registrasi_ibfk_2 FOREIGN KEY (kd_poli) REFERENCES poliklinik (kd_poli) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT booking_registrasi_ibfk_3 FOREIGN KEY (kd_pj) REFERENCES penjab (kd_pj) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT booking_registrasi_ibfk_4 FOREIGN KEY (no_rkm_medis) REFERENCES pasien (no_rkm_medis) ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

CREATE TABLE set_no_rkm_medis (no_rkm_medis varchar(15) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=latin1;

SET FOREIGN_KEY_CHECKS=1;
