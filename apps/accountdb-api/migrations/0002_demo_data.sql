-- Demo data: an admin and four users, password "accountdb-demo" for each (scrypt, see src/auth.ts).
-- Remove this file (before the first deploy) for a database without demo users.

insert into users (display_name)
select name from unnest(array['Ada Admin', 'Alice', 'Bob', 'Carol', 'Dave']) with ordinality as t (name, n) order by n;

insert into user_logins (user_id, email, password_hash, role)
select u.id, l.email, l.password_hash, l.role
from (values
  ('Ada Admin', 'admin@example.com', 'scrypt$16384$8$1$C3hY8FcO5wFrQFpxoD07ug==$wVfW913vEYoLTwKVLZrJN5vQRBbYU/tekF7ODWzfG+Y=', 'admin'),
  ('Alice', 'alice@example.com', 'scrypt$16384$8$1$5k3WCbx90COCjwHau0Ak4g==$urKkf18l05LOpxt7gvtpjolUIMlmK79adcNVIbdOJRQ=', 'user'),
  ('Bob', 'bob@example.com', 'scrypt$16384$8$1$ZKfRYCBQMlkCWtfVvdY57Q==$FnZCePme3qR316faLaKGsmAMWLWRHY7EWBRgVKWA2JI=', 'user'),
  ('Carol', 'carol@example.com', 'scrypt$16384$8$1$NKFBEi/74OSWXtMzXLs7ew==$ltlt/bovTCqgn3We65Qrb9KgOyce4/rhExwhKXrxRX4=', 'user'),
  ('Dave', 'dave@example.com', 'scrypt$16384$8$1$v/ZyHa5dfpHvCoP1m0X1VA==$kxxOzkdPAMXlRRyINSbY3dHiuGbTji95TMvqHV4+TUU=', 'user')
) as l (display_name, email, password_hash, role)
join users u using (display_name);

insert into accounts (user_id, name, kind, balance_cents, currency)
select u.id, a.name, a.kind, a.balance_cents, 'EUR'
from users u
cross join (values ('Everyday', 'checking', 125000), ('Rainy day', 'savings', 980000)) as a (name, kind, balance_cents);

insert into hardware (user_id, name, kind, serial_number)
select u.id, h.name, h.kind, upper(split_part(u.display_name, ' ', 1)) || '-' || h.suffix
from users u
cross join (values ('Work laptop', 'laptop', 'L1'), ('Phone', 'phone', 'P1'), ('Security key', 'token', 'T1')) as h (name, kind, suffix);

insert into cards (user_id, account_id, label, brand, last4, expires_on)
select a.user_id, a.id, 'Debit ' || a.name, 'visa', lpad((a.id * 37 % 10000)::text, 4, '0'), date '2029-12-31'
from accounts a;
