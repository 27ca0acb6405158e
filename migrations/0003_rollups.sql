-- Report rollups kept current in the write transaction. Every posting adds its amount to one
-- row of `flows` (per account, effective date, recorded date, vintage and entry kind) and one
-- row of `flows_monthly` (per account, effective month, contract year, vintage and kind), from
-- the posting trigger itself, so they can never miss a posting. A correction counts under the
-- kind it corrects (with the opposite sign), so reports keyed on the kind stay right. Reports
-- read the rollups instead of scanning postings; the audit re-adds them from the postings.
--
-- Contract years follow the same rule as ledger.Contract.Years: year n starts on the term
-- start's (n-1)th anniversary, an anniversary of 29 February falling on 28 February, and a
-- date after the term belongs to the last year (a late delivery).
CREATE FUNCTION contract_year(term_start date, term_end date, d date) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN d < term_start THEN 0 ELSE least(
        (SELECT n FROM (SELECT extract(year FROM d)::int - extract(year FROM term_start)::int AS k) x,
                LATERAL (SELECT CASE WHEN (term_start + make_interval(years => x.k))::date > d THEN x.k ELSE x.k + 1 END AS n) y),
        (SELECT n FROM (SELECT extract(year FROM term_end)::int - extract(year FROM term_start)::int AS k) x,
                LATERAL (SELECT CASE WHEN (term_start + make_interval(years => x.k))::date > term_end THEN x.k ELSE x.k + 1 END AS n) y))
    END
$$;

CREATE TABLE flows (
    account_id    bigint NOT NULL REFERENCES accounts (id),
    effective_on  date NOT NULL,
    recorded_on   date NOT NULL,   -- the UTC date of the entries' recorded_at
    vintage       smallint NOT NULL, -- 0 when not known
    kind          text NOT NULL,     -- the entry kind, or for a correction the kind it corrects
    book_id       bigint NOT NULL REFERENCES books (id),
    account_kind  text NOT NULL,
    contract_year integer NOT NULL,  -- 0 for a plain journal book or a date before the term
    amount        numeric NOT NULL,
    priced        numeric NOT NULL,  -- delivered tonnes whose price is known
    value         numeric NOT NULL,  -- sum of tonnes x price of those
    postings      bigint NOT NULL,
    PRIMARY KEY (account_id, effective_on, recorded_on, vintage, kind)
);
CREATE INDEX flows_book ON flows (book_id, effective_on);
CREATE INDEX flows_recorded ON flows (recorded_on);

CREATE TABLE flows_monthly (
    account_id    bigint NOT NULL REFERENCES accounts (id),
    month         date NOT NULL CHECK (extract(day FROM month) = 1),
    contract_year integer NOT NULL,
    vintage       smallint NOT NULL,
    kind          text NOT NULL,
    book_id       bigint NOT NULL REFERENCES books (id),
    account_kind  text NOT NULL,
    amount        numeric NOT NULL,
    priced        numeric NOT NULL,
    value         numeric NOT NULL,
    postings      bigint NOT NULL,
    PRIMARY KEY (account_id, month, contract_year, vintage, kind)
);
CREATE INDEX flows_monthly_month ON flows_monthly (month);
CREATE INDEX flows_monthly_book ON flows_monthly (book_id);

-- The rollups change only from the posting trigger.
CREATE FUNCTION rollups_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION '%: report rollups change only by posting entries', TG_TABLE_NAME USING ERRCODE = 'CL001';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER flows_guard BEFORE INSERT OR UPDATE OR DELETE ON flows
    FOR EACH ROW EXECUTE FUNCTION rollups_guard();
CREATE TRIGGER flows_monthly_guard BEFORE INSERT OR UPDATE OR DELETE ON flows_monthly
    FOR EACH ROW EXECUTE FUNCTION rollups_guard();
CREATE TRIGGER flows_no_truncate BEFORE TRUNCATE ON flows
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER flows_monthly_no_truncate BEFORE TRUNCATE ON flows_monthly
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

CREATE OR REPLACE FUNCTION postings_after_insert() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    e record;
    a record;
    c record;
    k text;
    cy integer := 0;
    price numeric;
    pr numeric := 0;
    val numeric := 0;
BEGIN
    SELECT book_id, xmin, kind, reverts, reverts_kind, effective_on, recorded_at, coalesce(vintage, 0) AS vintage, metadata
      INTO e FROM entries WHERE id = NEW.entry_id;
    IF NOT (e.xmin = pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'posting to entry %: postings are written only with their entry', NEW.entry_id
            USING ERRCODE = 'CL004';
    END IF;
    SELECT book_id, kind, code INTO a FROM accounts WHERE id = NEW.account_id;
    IF a.book_id <> e.book_id THEN
        RAISE EXCEPTION 'posting to entry %: account % belongs to another book', NEW.entry_id, a.code
            USING ERRCODE = 'CL004';
    END IF;
    IF a.kind = 'retired' AND NEW.amount < 0 THEN
        RAISE EXCEPTION 'account %: retired tonnes are final and never leave a retired account', a.code
            USING ERRCODE = 'CL005';
    END IF;
    UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;

    k := coalesce(e.reverts_kind, e.kind);
    SELECT term_start, term_end INTO c FROM contracts WHERE book_id = e.book_id;
    IF FOUND THEN
        cy := contract_year(c.term_start, c.term_end, e.effective_on);
    END IF;
    IF k = 'deliver' AND a.kind IN ('holding', 'retired') THEN
        IF e.reverts IS NULL THEN
            price := (e.metadata->>'price_per_tonne')::numeric;
        ELSE
            SELECT (metadata->>'price_per_tonne')::numeric INTO price FROM entries WHERE id = e.reverts;
        END IF;
        IF price IS NOT NULL THEN
            pr := NEW.amount;
            val := NEW.amount * price;
        END IF;
    END IF;
    INSERT INTO flows AS f (account_id, effective_on, recorded_on, vintage, kind, book_id, account_kind, contract_year,
                            amount, priced, value, postings)
    VALUES (NEW.account_id, e.effective_on, (e.recorded_at AT TIME ZONE 'UTC')::date, e.vintage, k, e.book_id, a.kind, cy,
            NEW.amount, pr, val, 1)
    ON CONFLICT (account_id, effective_on, recorded_on, vintage, kind) DO UPDATE
       SET amount = f.amount + EXCLUDED.amount, priced = f.priced + EXCLUDED.priced,
           value = f.value + EXCLUDED.value, postings = f.postings + 1;
    INSERT INTO flows_monthly AS f (account_id, month, contract_year, vintage, kind, book_id, account_kind,
                                    amount, priced, value, postings)
    VALUES (NEW.account_id, date_trunc('month', e.effective_on)::date, cy, e.vintage, k, e.book_id, a.kind,
            NEW.amount, pr, val, 1)
    ON CONFLICT (account_id, month, contract_year, vintage, kind) DO UPDATE
       SET amount = f.amount + EXCLUDED.amount, priced = f.priced + EXCLUDED.priced,
           value = f.value + EXCLUDED.value, postings = f.postings + 1;
    RETURN NULL;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT SELECT ON flows, flows_monthly TO carbonledger_writer, carbonledger_reader;
        GRANT EXECUTE ON FUNCTION contract_year(date, date, date) TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;

-- Backfill from the postings already written (a forward-only migration must carry the
-- existing journal along); the guards are off only inside this transaction.
ALTER TABLE flows DISABLE TRIGGER flows_guard;
ALTER TABLE flows_monthly DISABLE TRIGGER flows_monthly_guard;
INSERT INTO flows (account_id, effective_on, recorded_on, vintage, kind, book_id, account_kind, contract_year,
                   amount, priced, value, postings)
SELECT p.account_id, e.effective_on, (e.recorded_at AT TIME ZONE 'UTC')::date, coalesce(e.vintage, 0),
       coalesce(e.reverts_kind, e.kind), e.book_id, a.kind,
       coalesce(contract_year(c.term_start, c.term_end, e.effective_on), 0),
       sum(p.amount),
       sum(CASE WHEN x.price IS NOT NULL THEN p.amount ELSE 0 END),
       sum(CASE WHEN x.price IS NOT NULL THEN p.amount * x.price ELSE 0 END),
       count(*)
  FROM postings p
  JOIN entries e ON e.id = p.entry_id
  JOIN accounts a ON a.id = p.account_id
  LEFT JOIN contracts c ON c.book_id = e.book_id
  LEFT JOIN entries o ON o.id = e.reverts
  CROSS JOIN LATERAL (SELECT CASE WHEN coalesce(e.reverts_kind, e.kind) = 'deliver' AND a.kind IN ('holding', 'retired')
                                  THEN (coalesce(o.metadata, e.metadata)->>'price_per_tonne')::numeric END AS price) x
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
INSERT INTO flows_monthly (account_id, month, contract_year, vintage, kind, book_id, account_kind,
                           amount, priced, value, postings)
SELECT account_id, date_trunc('month', effective_on)::date, contract_year, vintage, kind, book_id, account_kind,
       sum(amount), sum(priced), sum(value), sum(postings)
  FROM flows
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
ALTER TABLE flows ENABLE TRIGGER flows_guard;
ALTER TABLE flows_monthly ENABLE TRIGGER flows_monthly_guard;
