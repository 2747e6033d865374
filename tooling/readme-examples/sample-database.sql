-- The sample database: what every README example may assume. Each example gets a fresh copy,
-- created by the superuser (who owns these tables); the example itself logs in as the application
-- role (NOSUPERUSER NOBYPASSRLS), which gets SELECT/INSERT/UPDATE/DELETE on every table here and
-- CREATE on schema public. The seed's schema, cut down; no RLS policies yet (the rls README adds them).

CREATE TABLE users (
  id int PRIMARY KEY,
  email text NOT NULL UNIQUE
);

CREATE TABLE accounts (
  id int PRIMARY KEY,
  user_id int NOT NULL REFERENCES users,
  name text NOT NULL,
  balance numeric(12, 2) NOT NULL DEFAULT 0
);

CREATE TABLE cards (
  id int PRIMARY KEY,
  user_id int NOT NULL REFERENCES users,
  account_id int NOT NULL REFERENCES accounts,
  label text
);

INSERT INTO users VALUES (42, 'ada@example.com'), (43, 'grace@example.com');
INSERT INTO accounts VALUES (7, 42, 'checking', 120.50), (8, 43, 'savings', 9000);
INSERT INTO cards VALUES (3, 42, 7, 'groceries'), (4, 43, 8, NULL);
