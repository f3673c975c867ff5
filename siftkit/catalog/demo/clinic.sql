-- Invented demo data for siftkit (Apache-2.0, written for this project).
CREATE TABLE patients (patient_id INTEGER PRIMARY KEY, patient_name VARCHAR, birth_dt DATE, sex VARCHAR,
                       country_cd VARCHAR);
INSERT INTO patients VALUES (100, 'J. Doe', '1980-06-01', 'F', 'FR'), (101, 'R. Roe', '1975-11-23', 'M', 'DE'),
  (102, 'A. Poe', '1992-02-14', 'F', 'FR'), (103, 'B. Moe', '2001-09-30', 'M', 'IT');
CREATE TABLE visits (visit_id INTEGER PRIMARY KEY, patient_id INTEGER REFERENCES patients(patient_id),
                     visit_dt DATE, fee_amt DECIMAL(8, 2), diagnosis_cd VARCHAR);
INSERT INTO visits VALUES (1, 100, '2024-01-05', 60.00, 'J06'), (2, 101, '2024-01-06', 45.00, 'M54'),
  (3, 100, '2024-02-10', 60.00, 'I10'), (4, 103, '2024-02-11', 80.00, 'J06');
COMMENT ON TABLE patients IS 'People registered as patients of the clinic.';
COMMENT ON COLUMN patients.patient_id IS 'Unique identifier of the patient.';
COMMENT ON COLUMN patients.patient_name IS 'Name of the patient as written on the admission form.';
COMMENT ON COLUMN patients.birth_dt IS 'Date of birth of the patient.';
COMMENT ON COLUMN patients.sex IS 'Sex of the patient recorded at admission.';
COMMENT ON COLUMN patients.country_cd IS 'Two-letter ISO code of the country of residence of the patient.';
COMMENT ON TABLE visits IS 'Consultations of patients at the clinic, one row per visit.';
COMMENT ON COLUMN visits.visit_id IS 'Unique identifier of the visit.';
COMMENT ON COLUMN visits.patient_id IS 'Identifier of the patient who was seen.';
COMMENT ON COLUMN visits.visit_dt IS 'Date on which the visit took place.';
COMMENT ON COLUMN visits.fee_amt IS 'Fee charged for the visit, in euros.';
COMMENT ON COLUMN visits.diagnosis_cd IS 'ICD-10 code of the main diagnosis of the visit.';
