-- The rollups' foreign keys to accounts and books go. They checked nothing the schema does
-- not already hold: a rollup row is written only by the posting trigger (every other INSERT,
-- UPDATE, DELETE or TRUNCATE is refused by the rollups' guard), which takes its account and
-- book from the posting's own rows, joined and key-checked by the postings' foreign keys;
-- and no account or book is ever deleted (accounts_no_delete, books_no_delete). The audit
-- re-adds every rollup row from the postings, and names a row whose account is unknown.
-- What they cost: a lookup of the account and of the book for every rollup row inserted, an
-- eighth of the time of a bulk import (the daily rollup inserts about a row per posting).
ALTER TABLE flows DROP CONSTRAINT flows_account_id_fkey, DROP CONSTRAINT flows_book_id_fkey;
ALTER TABLE flows_monthly DROP CONSTRAINT flows_monthly_account_id_fkey, DROP CONSTRAINT flows_monthly_book_id_fkey;
ALTER TABLE book_months DROP CONSTRAINT book_months_book_id_fkey;
ALTER TABLE book_months_effective DROP CONSTRAINT book_months_effective_book_id_fkey;
ALTER TABLE book_years DROP CONSTRAINT book_years_book_id_fkey;
