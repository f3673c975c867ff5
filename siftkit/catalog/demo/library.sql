-- Invented demo data for siftkit (Apache-2.0, written for this project).
CREATE TABLE members (member_id INTEGER PRIMARY KEY, member_name VARCHAR, email VARCHAR, joined_dt DATE);
INSERT INTO members VALUES (7, 'Mary Shelley', 'mary@example.org', '2022-10-01'),
  (8, 'Jules Verne', 'jules@example.org', '2023-04-17'), (9, 'H. G. Wells', NULL, '2023-08-08');
CREATE TABLE loans (loan_id INTEGER PRIMARY KEY, member_id INTEGER REFERENCES members(member_id), isbn VARCHAR,
                    loan_dt DATE, due_dt DATE, late_fee_amt DECIMAL(6, 2));
INSERT INTO loans VALUES (500, 7, '9780141439471', '2024-05-01', '2024-05-22', 0.00),
  (501, 8, '9780140367140', '2024-05-03', '2024-05-24', 1.50), (502, 7, '9780553213515', '2024-06-02', '2024-06-23', 0.00);
COMMENT ON TABLE members IS 'People who hold a library card.';
COMMENT ON COLUMN members.member_id IS 'Unique identifier of the library member.';
COMMENT ON COLUMN members.member_name IS 'Full name of the library member.';
COMMENT ON COLUMN members.email IS 'Email address used to send loan reminders to the member.';
COMMENT ON COLUMN members.joined_dt IS 'Date on which the member received the library card.';
COMMENT ON TABLE loans IS 'Books lent to members, one row per loan.';
COMMENT ON COLUMN loans.loan_id IS 'Unique identifier of the loan.';
COMMENT ON COLUMN loans.member_id IS 'Identifier of the member who borrowed the book.';
COMMENT ON COLUMN loans.isbn IS 'ISBN-13 of the borrowed book.';
COMMENT ON COLUMN loans.loan_dt IS 'Date on which the book was lent.';
COMMENT ON COLUMN loans.due_dt IS 'Date by which the book must be returned.';
COMMENT ON COLUMN loans.late_fee_amt IS 'Fee charged for returning the book late, in euros.';
