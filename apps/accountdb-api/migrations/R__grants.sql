-- What the application's login role may do: through the NOLOGIN group role accountdb_api_user,
-- which src/provision.ts creates (with the login role as its member) before migrations run.
-- Nothing here is owned by either role; rows are filtered by the policies in R__row_level_security.sql.

grant usage on schema public to accountdb_api_user;
grant select, insert, update, delete on accounts, hardware, cards to accountdb_api_user;
grant select, update on users to accountdb_api_user;
revoke all on user_logins from public;
grant usage on all sequences in schema public to accountdb_api_user;
-- Sign-in reads one user's password hash through app.sign_in_lookup (R__sign_in.sql), never the table.
