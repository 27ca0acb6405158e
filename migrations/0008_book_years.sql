-- Per contract book and contract year, the totals of every measure over all time, in
-- kilograms: a few rows per contract. A report as of a date and as known at an instant is
-- these totals minus what lies after them (effective later, or recorded later), which the
-- monthly and daily rollups give in a few rows when the date and the instant are recent, as
-- they usually are; the work never exceeds a pass over book_months.
CREATE TABLE book_years (
    book_id          bigint NOT NULL REFERENCES books (id),
    contract_year    integer NOT NULL,
    contracted       bigint NOT NULL DEFAULT 0,
    replacements     bigint NOT NULL DEFAULT 0,
    open             bigint NOT NULL DEFAULT 0,
    delivered        bigint NOT NULL DEFAULT 0,
    holding          bigint NOT NULL DEFAULT 0,
    retired          bigint NOT NULL DEFAULT 0,
    cancelled        bigint NOT NULL DEFAULT 0,
    reversed         bigint NOT NULL DEFAULT 0,
    buffer_cancelled bigint NOT NULL DEFAULT 0,
    holding_in       bigint NOT NULL DEFAULT 0,
    priced           bigint NOT NULL DEFAULT 0,
    value            numeric NOT NULL DEFAULT 0,
    postings         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (book_id, contract_year)
);
CREATE INDEX book_months_recorded ON book_months (recorded_month);

CREATE TRIGGER book_years_guard BEFORE INSERT OR UPDATE OR DELETE ON book_years
    FOR EACH ROW EXECUTE FUNCTION rollups_guard();
CREATE TRIGGER book_years_no_truncate BEFORE TRUNCATE ON book_years
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
    INSERT INTO book_years AS b (book_id, contract_year, contracted, replacements, open, delivered, holding, retired,
                                 cancelled, reversed, buffer_cancelled, holding_in, priced, value, postings)
    SELECT e.book_id, cy, (m.contracted * 1000)::bigint, (m.replacements * 1000)::bigint, (m.open * 1000)::bigint,
           (m.delivered * 1000)::bigint, (m.holding * 1000)::bigint, (m.retired * 1000)::bigint,
           (m.cancelled * 1000)::bigint, (m.reversed * 1000)::bigint, (m.buffer_cancelled * 1000)::bigint,
           (m.holding_in * 1000)::bigint, (pr * 1000)::bigint, val, 1
      FROM posting_measures(a.kind, k, NEW.amount) m
    ON CONFLICT (book_id, contract_year) DO UPDATE
       SET contracted = b.contracted + EXCLUDED.contracted, replacements = b.replacements + EXCLUDED.replacements,
           open = b.open + EXCLUDED.open, delivered = b.delivered + EXCLUDED.delivered, holding = b.holding + EXCLUDED.holding,
           retired = b.retired + EXCLUDED.retired, cancelled = b.cancelled + EXCLUDED.cancelled,
           reversed = b.reversed + EXCLUDED.reversed, buffer_cancelled = b.buffer_cancelled + EXCLUDED.buffer_cancelled,
           holding_in = b.holding_in + EXCLUDED.holding_in, priced = b.priced + EXCLUDED.priced,
           value = b.value + EXCLUDED.value, postings = b.postings + 1;
    RETURN NULL;
END $$;


CREATE VIEW book_years_expected AS
SELECT book_id, contract_year, sum(contracted)::bigint AS contracted, sum(replacements)::bigint AS replacements,
       sum(open)::bigint AS open, sum(delivered)::bigint AS delivered, sum(holding)::bigint AS holding,
       sum(retired)::bigint AS retired, sum(cancelled)::bigint AS cancelled, sum(reversed)::bigint AS reversed,
       sum(buffer_cancelled)::bigint AS buffer_cancelled, sum(holding_in)::bigint AS holding_in,
       sum(priced)::bigint AS priced, sum(value) AS value, sum(postings)::bigint AS postings
  FROM book_months_expected
 GROUP BY 1, 2;

-- Backfill from book_months, which the audit proves equal to the postings.
ALTER TABLE book_years DISABLE TRIGGER book_years_guard;
INSERT INTO book_years
SELECT book_id, contract_year, sum(contracted), sum(replacements), sum(open), sum(delivered), sum(holding), sum(retired),
       sum(cancelled), sum(reversed), sum(buffer_cancelled), sum(holding_in), sum(priced), sum(value), sum(postings)
  FROM book_months GROUP BY 1, 2;
ALTER TABLE book_years ENABLE TRIGGER book_years_guard;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT SELECT ON book_years, book_years_expected TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;
