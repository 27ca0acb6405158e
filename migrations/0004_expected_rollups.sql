-- What the rollups should hold, recomputed from the postings: the audit compares these views
-- with the rollups the trigger maintains, and a bulk load (the benchmark's seeder) fills the
-- rollups from them. They mirror the trigger in 0003 exactly.
CREATE VIEW flows_expected AS
SELECT p.account_id, e.effective_on, (e.recorded_at AT TIME ZONE 'UTC')::date AS recorded_on,
       coalesce(e.vintage, 0)::smallint AS vintage, coalesce(e.reverts_kind, e.kind) AS kind, e.book_id,
       a.kind AS account_kind, coalesce(contract_year(c.term_start, c.term_end, e.effective_on), 0) AS contract_year,
       sum(p.amount) AS amount,
       sum(CASE WHEN x.price IS NOT NULL THEN p.amount ELSE 0 END) AS priced,
       sum(CASE WHEN x.price IS NOT NULL THEN p.amount * x.price ELSE 0 END) AS value,
       count(*) AS postings
  FROM postings p
  JOIN entries e ON e.id = p.entry_id
  JOIN accounts a ON a.id = p.account_id
  LEFT JOIN contracts c ON c.book_id = e.book_id
  LEFT JOIN entries o ON o.id = e.reverts
  CROSS JOIN LATERAL (SELECT CASE WHEN coalesce(e.reverts_kind, e.kind) = 'deliver' AND a.kind IN ('holding', 'retired')
                                  THEN (coalesce(o.metadata, e.metadata)->>'price_per_tonne')::numeric END AS price) x
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

CREATE VIEW flows_monthly_expected AS
SELECT account_id, date_trunc('month', effective_on)::date AS month, contract_year, vintage, kind, book_id, account_kind,
       sum(amount) AS amount, sum(priced) AS priced, sum(value) AS value, sum(postings)::bigint AS postings
  FROM flows_expected
 GROUP BY 1, 2, 3, 4, 5, 6, 7;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT SELECT ON flows_expected, flows_monthly_expected TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;

-- Terminations are looked up on every write under a contract and by every report; a partial
-- index keeps that from scanning the journal.
CREATE INDEX entries_terminations ON entries (book_id, effective_on)
    WHERE kind = 'cancel' AND metadata->>'terminate' = 'true';
