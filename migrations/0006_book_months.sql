-- A pivoted rollup for reports: per contract book, effective month, contract year and
-- recorded month, the tonnes of each measure the reports print (the same mapping as
-- ledger.Position.Add). It has one row per book and month in the common case, about a tenth
-- of the rows of flows_monthly, which keeps every report over the whole ledger well inside
-- its time budget; the recorded month lets `--known-at` use it for every whole month before
-- the known-at month. The posting trigger maintains it; the audit re-adds it from the
-- postings. Also: index flows by effective and recorded date for the partial month and day.
CREATE TABLE book_months (
    book_id          bigint NOT NULL REFERENCES books (id),
    month            date NOT NULL CHECK (extract(day FROM month) = 1),
    contract_year    integer NOT NULL,
    recorded_month   date NOT NULL CHECK (extract(day FROM recorded_month) = 1),
    contracted       numeric NOT NULL DEFAULT 0,
    replacements     numeric NOT NULL DEFAULT 0,
    open             numeric NOT NULL DEFAULT 0,
    delivered        numeric NOT NULL DEFAULT 0,
    holding          numeric NOT NULL DEFAULT 0,
    retired          numeric NOT NULL DEFAULT 0,
    cancelled        numeric NOT NULL DEFAULT 0,
    reversed         numeric NOT NULL DEFAULT 0,
    buffer_cancelled numeric NOT NULL DEFAULT 0,
    holding_in       numeric NOT NULL DEFAULT 0, -- delivered into the holding (for the inventory's age)
    priced           numeric NOT NULL DEFAULT 0,
    value            numeric NOT NULL DEFAULT 0,
    postings         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (book_id, month, contract_year, recorded_month)
);
CREATE INDEX book_months_month ON book_months (month);
CREATE INDEX flows_effective ON flows (effective_on);

CREATE TRIGGER book_months_guard BEFORE INSERT OR UPDATE OR DELETE ON book_months
    FOR EACH ROW EXECUTE FUNCTION rollups_guard();
CREATE TRIGGER book_months_no_truncate BEFORE TRUNCATE ON book_months
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- The measures one posting adds, as a row (account kind ak, effective entry kind k, amount a).
CREATE FUNCTION posting_measures(ak text, k text, a numeric,
    OUT contracted numeric, OUT replacements numeric, OUT open numeric, OUT delivered numeric, OUT holding numeric,
    OUT retired numeric, OUT cancelled numeric, OUT reversed numeric, OUT buffer_cancelled numeric, OUT holding_in numeric)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ak = 'open' AND k IN ('sign', 'amend') THEN a ELSE 0 END,
           CASE WHEN ak = 'open' AND k = 'reverse' THEN a ELSE 0 END,
           CASE WHEN ak = 'open' THEN a ELSE 0 END,
           CASE WHEN ak IN ('holding', 'retired') AND k = 'deliver' THEN a ELSE 0 END,
           CASE WHEN ak = 'holding' THEN a ELSE 0 END,
           CASE WHEN ak = 'retired' THEN a ELSE 0 END,
           CASE WHEN ak = 'cancelled' THEN a ELSE 0 END,
           CASE WHEN ak = 'reversed' THEN a ELSE 0 END,
           CASE WHEN ak = 'buffer_cancelled' THEN a ELSE 0 END,
           CASE WHEN ak = 'holding' AND k = 'deliver' THEN a ELSE 0 END
$$;

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
    IF NOT written_in_this_transaction(e.xmin) THEN
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
    INSERT INTO book_months AS b (book_id, month, contract_year, recorded_month, contracted, replacements, open, delivered,
                                  holding, retired, cancelled, reversed, buffer_cancelled, holding_in, priced, value, postings)
    SELECT e.book_id, date_trunc('month', e.effective_on)::date, cy, date_trunc('month', e.recorded_at AT TIME ZONE 'UTC')::date,
           m.contracted, m.replacements, m.open, m.delivered, m.holding, m.retired, m.cancelled, m.reversed,
           m.buffer_cancelled, m.holding_in, pr, val, 1
      FROM posting_measures(a.kind, k, NEW.amount) m
    ON CONFLICT (book_id, month, contract_year, recorded_month) DO UPDATE
       SET contracted = b.contracted + EXCLUDED.contracted, replacements = b.replacements + EXCLUDED.replacements,
           open = b.open + EXCLUDED.open, delivered = b.delivered + EXCLUDED.delivered, holding = b.holding + EXCLUDED.holding,
           retired = b.retired + EXCLUDED.retired, cancelled = b.cancelled + EXCLUDED.cancelled,
           reversed = b.reversed + EXCLUDED.reversed, buffer_cancelled = b.buffer_cancelled + EXCLUDED.buffer_cancelled,
           holding_in = b.holding_in + EXCLUDED.holding_in, priced = b.priced + EXCLUDED.priced,
           value = b.value + EXCLUDED.value, postings = b.postings + 1;
    RETURN NULL;
END $$;


-- What book_months should hold, from the postings (via flows_expected, itself from the postings).
CREATE VIEW book_months_expected AS
SELECT f.book_id, date_trunc('month', f.effective_on)::date AS month, f.contract_year,
       date_trunc('month', f.recorded_on)::date AS recorded_month,
       sum(m.contracted) AS contracted, sum(m.replacements) AS replacements, sum(m.open) AS open,
       sum(m.delivered) AS delivered, sum(m.holding) AS holding, sum(m.retired) AS retired,
       sum(m.cancelled) AS cancelled, sum(m.reversed) AS reversed, sum(m.buffer_cancelled) AS buffer_cancelled,
       sum(m.holding_in) AS holding_in, sum(f.priced) AS priced, sum(f.value) AS value, sum(f.postings)::bigint AS postings
  FROM flows_expected f CROSS JOIN LATERAL posting_measures(f.account_kind, f.kind, f.amount) m
 GROUP BY 1, 2, 3, 4;

-- Backfill from the journal already written.
ALTER TABLE book_months DISABLE TRIGGER book_months_guard;
INSERT INTO book_months SELECT * FROM book_months_expected;
ALTER TABLE book_months ENABLE TRIGGER book_months_guard;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT SELECT ON book_months, book_months_expected TO carbonledger_writer, carbonledger_reader;
        GRANT EXECUTE ON FUNCTION posting_measures(text, text, numeric) TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;
