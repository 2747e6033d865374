-- The seed's tables. Every row belongs to a user (users.id); the policies that enforce it are in
-- R__row_level_security.sql, the privileges of the application's role in R__grants.sql.
-- These tables are owned by the migration role, never by the role the application logs in as.

create table users (
  id            integer generated always as identity primary key,
  display_name  text not null check (length(display_name) between 1 and 100),
  created_at    timestamptz not null default now()
);

-- Sign-in data, apart from users: read before any user context exists, so it cannot sit behind the
-- users policy. No RLS and no privileges for the application's role: only app.sign_in_lookup
-- (R__sign_in.sql, SECURITY DEFINER) reads it, one exact e-mail at a time.
create table user_logins (
  user_id       integer primary key references users (id) on delete cascade,
  email         text not null unique check (email = lower(email) and length(email) between 3 and 254),
  password_hash text not null,
  role          text not null default 'user' check (role in ('user', 'admin'))
);

create table accounts (
  id            integer generated always as identity primary key,
  user_id       integer not null references users (id) on delete cascade,
  name          text not null check (length(name) between 1 and 100),
  kind          text not null check (kind in ('checking', 'savings', 'credit')),
  balance_cents bigint not null default 0,
  currency      text not null default 'EUR' check (currency ~ '^[A-Z]{3}$'),
  created_at    timestamptz not null default now(),
  -- A user's account names are unique (409 on a duplicate); another user's names are none of their business.
  -- Its index, led by user_id, also serves the policy's user_id filter (no separate user_id index).
  unique (user_id, name),
  -- Target of cards' composite foreign key: a card can only point at an account of its own user.
  unique (id, user_id)
);

create table hardware (
  id            integer generated always as identity primary key,
  user_id       integer not null references users (id) on delete cascade,
  name          text not null check (length(name) between 1 and 100),
  kind          text not null check (kind in ('laptop', 'phone', 'tablet', 'token')),
  serial_number text not null check (length(serial_number) between 1 and 64),
  created_at    timestamptz not null default now(),
  unique (user_id, serial_number)
);

create table cards (
  id          integer generated always as identity primary key,
  user_id     integer not null references users (id) on delete cascade,
  account_id  integer not null,
  label       text not null check (length(label) between 1 and 100),
  brand       text not null check (brand in ('visa', 'mastercard', 'amex')),
  last4       text not null check (last4 ~ '^[0-9]{4}$'),
  expires_on  date not null,
  created_at  timestamptz not null default now(),
  -- Referential checks run as the table owner and skip RLS: with (account_id, user_id) the account
  -- must be the card owner's own, so a user cannot attach a card to an account they cannot see.
  foreign key (account_id, user_id) references accounts (id, user_id) on delete cascade
);
create index cards_account_id_user_id_idx on cards (account_id, user_id);
create index cards_user_id_idx on cards (user_id);
