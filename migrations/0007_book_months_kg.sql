-- book_months in whole kilograms: PostgreSQL sums bigint in 128-bit integers, an order of
-- magnitude faster than numeric, and a report sums a hundred thousand of these rows on every
-- run. The scale of tonnes is fixed at 3, so kilograms are exact. (value, tonnes x price,
-- stays numeric.)
DROP VIEW book_months_expected;
ALTER TABLE book_months DISABLE TRIGGER book_months_guard;
ALTER TABLE book_months
    ALTER COLUMN contracted TYPE bigint USING (contracted * 1000)::bigint,
    ALTER COLUMN replacements TYPE bigint USING (replacements * 1000)::bigint,
    ALTER COLUMN open TYPE bigint USING (open * 1000)::bigint,
    ALTER COLUMN delivered TYPE bigint USING (delivered * 1000)::bigint,
    ALTER COLUMN holding TYPE bigint USING (holding * 1000)::bigint,
    ALTER COLUMN retired TYPE bigint USING (retired * 1000)::bigint,
    ALTER COLUMN cancelled TYPE bigint USING (cancelled * 1000)::bigint,
    ALTER COLUMN reversed TYPE bigint USING (reversed * 1000)::bigint,
    ALTER COLUMN buffer_cancelled TYPE bigint USING (buffer_cancelled * 1000)::bigint,
    ALTER COLUMN holding_in TYPE bigint USING (holding_in * 1000)::bigint,
    ALTER COLUMN priced TYPE bigint USING (priced * 1000)::bigint;
ALTER TABLE book_months ENABLE TRIGGER book_months_guard;

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
           (m.contracted * 1000)::bigint, (m.replacements * 1000)::bigint, (m.open * 1000)::bigint,
           (m.delivered * 1000)::bigint, (m.holding * 1000)::bigint, (m.retired * 1000)::bigint,
           (m.cancelled * 1000)::bigint, (m.reversed * 1000)::bigint, (m.buffer_cancelled * 1000)::bigint,
           (m.holding_in * 1000)::bigint, (pr * 1000)::bigint, val, 1
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

CREATE VIEW book_months_expected AS
SELECT f.book_id, date_trunc('month', f.effective_on)::date AS month, f.contract_year,
       date_trunc('month', f.recorded_on)::date AS recorded_month,
       (sum(m.contracted) * 1000)::bigint AS contracted, (sum(m.replacements) * 1000)::bigint AS replacements,
       (sum(m.open) * 1000)::bigint AS open, (sum(m.delivered) * 1000)::bigint AS delivered,
       (sum(m.holding) * 1000)::bigint AS holding, (sum(m.retired) * 1000)::bigint AS retired,
       (sum(m.cancelled) * 1000)::bigint AS cancelled, (sum(m.reversed) * 1000)::bigint AS reversed,
       (sum(m.buffer_cancelled) * 1000)::bigint AS buffer_cancelled, (sum(m.holding_in) * 1000)::bigint AS holding_in,
       (sum(f.priced) * 1000)::bigint AS priced, sum(f.value) AS value, sum(f.postings)::bigint AS postings
  FROM flows_expected f CROSS JOIN LATERAL posting_measures(f.account_kind, f.kind, f.amount) m
 GROUP BY 1, 2, 3, 4;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT SELECT ON book_months_expected TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;
