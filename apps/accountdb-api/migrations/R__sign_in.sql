-- Sign-in happens before there is a user context. This function (owned by the migration role,
-- SECURITY DEFINER) returns the one login matching an exact e-mail from user_logins, which the
-- application's role cannot read at all. search_path is pinned so a caller cannot substitute objects.

create schema if not exists app;
create or replace function app.sign_in_lookup(p_email text)
  returns table (user_id integer, password_hash text, role text)
  language sql stable security definer
  set search_path = pg_catalog
  as $fn$ select l.user_id, l.password_hash, l.role from public.user_logins l where l.email = lower(p_email) $fn$;
revoke all on function app.sign_in_lookup(text) from public;
grant execute on function app.sign_in_lookup(text) to accountdb_api_user;
