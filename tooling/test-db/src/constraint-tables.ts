/**
 * One table per kind of constraint, for tests of how database errors are mapped: `parents (id)` with
 * row 1; `people (id, email, age, parent_id)` with `people_email_key` (unique; email is not null),
 * `people_age_check` (age >= 0) and `people_parent_fkey` (to parents); `bookings (during int4range)`
 * with the exclusion constraint `bookings_no_overlap`. Needs nothing beyond core PostgreSQL.
 */
export const CONSTRAINT_TABLES_SQL = `
  create table parents (id int primary key);
  create table people (
    id int primary key,
    email text not null constraint people_email_key unique,
    age int constraint people_age_check check (age >= 0),
    parent_id int constraint people_parent_fkey references parents(id)
  );
  create table bookings (during int4range, constraint bookings_no_overlap exclude using gist (during with &&));
  insert into parents values (1);
`;
