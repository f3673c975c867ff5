-- Invented demo data for siftkit (Apache-2.0, written for this project).
CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, full_name VARCHAR, email VARCHAR, signup_dt DATE,
                        country_cd VARCHAR);
INSERT INTO customers VALUES (1, 'Ada Lovelace', 'ada@example.org', '2023-01-14', 'GB'),
  (2, 'Grace Hopper', 'grace@example.org', '2023-02-03', 'US'), (3, 'Alan Turing', NULL, '2023-03-22', 'GB'),
  (4, 'Katherine Johnson', 'kj@example.org', '2023-05-09', 'US'), (5, 'Hedy Lamarr', 'hedy@example.org', '2024-01-30', 'AT');
CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(customer_id),
                     order_dt DATE, total_amt DECIMAL(10, 2), status VARCHAR);
INSERT INTO orders VALUES (10, 1, '2024-03-01', 19.99, 'shipped'), (11, 2, '2024-03-02', 250.00, 'delivered'),
  (12, 2, '2024-03-05', 5.50, 'cancelled'), (13, 4, '2024-04-11', 74.25, 'shipped'), (14, 5, '2024-04-12', 12.00, 'pending');
COMMENT ON TABLE customers IS 'People who have registered an account in the online shop.';
COMMENT ON COLUMN customers.customer_id IS 'Unique identifier of the customer account.';
COMMENT ON COLUMN customers.full_name IS 'Given name and family name of the customer.';
COMMENT ON COLUMN customers.email IS 'Email address used to contact the customer.';
COMMENT ON COLUMN customers.signup_dt IS 'Date on which the customer created the account.';
COMMENT ON COLUMN customers.country_cd IS 'Two-letter ISO code of the country the customer lives in.';
COMMENT ON TABLE orders IS 'Purchases placed by customers, one row per order.';
COMMENT ON COLUMN orders.order_id IS 'Unique identifier of the order.';
COMMENT ON COLUMN orders.customer_id IS 'Identifier of the customer who placed the order.';
COMMENT ON COLUMN orders.order_dt IS 'Date on which the order was placed.';
COMMENT ON COLUMN orders.total_amt IS 'Total amount charged for the order, in euros.';
COMMENT ON COLUMN orders.status IS 'Current fulfilment state of the order.';
