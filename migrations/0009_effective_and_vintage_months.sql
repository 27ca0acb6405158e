-- Two narrower rollups, so that reports over years of history read tens of thousands of rows,
-- not a hundred thousand:
--
-- book_months_effective: per contract book, effective month and contract year, without the
-- recorded month of book_months (a third of its rows). What took effect in a range of months,
-- as known now, is read from here; as known at an earlier instant, it is this minus what
-- book_months says was recorded later.
--
-- vintage_months: per effective month, vintage and recorded month, striped over 16 shards by
-- book (book_id % 16) so that concurrent writers of different books rarely wait on one row. A
-- vintage is a property of each entry, not of its contract, so the per-book rollups cannot
-- give it; the per-account ones have ten times the rows. A report by vintage needs no book.
--
-- Each is kept by a trigger on the rollup it refines (the delta of every insert or update of a
-- book_months or flows row), inside the posting's transaction, so it is exact at every commit.
-- The audit re-adds both from the postings.
CREATE TABLE book_months_effective (
    book_id          bigint NOT NULL REFERENCES books (id),
    month            date NOT NULL CHECK (extract(day FROM month) = 1),
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
    PRIMARY KEY (book_id, month, contract_year)
);
CREATE INDEX book_months_effective_month ON book_months_effective (month);

CREATE TABLE vintage_months (
    shard            smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    month            date NOT NULL CHECK (extract(day FROM month) = 1),
    vintage          integer NOT NULL,
    recorded_month   date NOT NULL CHECK (extract(day FROM recorded_month) = 1),
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
    PRIMARY KEY (month, vintage, recorded_month, shard)
);

CREATE TRIGGER book_months_effective_guard BEFORE INSERT OR UPDATE OR DELETE ON book_months_effective
    FOR EACH ROW EXECUTE FUNCTION rollups_guard();
CREATE TRIGGER book_months_effective_no_truncate BEFORE TRUNCATE ON book_months_effective
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER vintage_months_guard BEFORE INSERT OR UPDATE OR DELETE ON vintage_months
    FOR EACH ROW EXECUTE FUNCTION rollups_guard();
CREATE TRIGGER vintage_months_no_truncate BEFORE TRUNCATE ON vintage_months
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- book_months row changed: add the difference to its effective month.
CREATE FUNCTION book_months_refine() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    o book_months;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        o := OLD;
    ELSE
        o := ROW(NEW.book_id, NEW.month, NEW.contract_year, NEW.recorded_month, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    END IF;
    INSERT INTO book_months_effective AS b (book_id, month, contract_year, contracted, replacements, open, delivered, holding,
                                            retired, cancelled, reversed, buffer_cancelled, holding_in, priced, value, postings)
    VALUES (NEW.book_id, NEW.month, NEW.contract_year, NEW.contracted - o.contracted, NEW.replacements - o.replacements,
            NEW.open - o.open, NEW.delivered - o.delivered, NEW.holding - o.holding, NEW.retired - o.retired,
            NEW.cancelled - o.cancelled, NEW.reversed - o.reversed, NEW.buffer_cancelled - o.buffer_cancelled,
            NEW.holding_in - o.holding_in, NEW.priced - o.priced, NEW.value - o.value, NEW.postings - o.postings)
    ON CONFLICT (book_id, month, contract_year) DO UPDATE
       SET contracted = b.contracted + EXCLUDED.contracted, replacements = b.replacements + EXCLUDED.replacements,
           open = b.open + EXCLUDED.open, delivered = b.delivered + EXCLUDED.delivered, holding = b.holding + EXCLUDED.holding,
           retired = b.retired + EXCLUDED.retired, cancelled = b.cancelled + EXCLUDED.cancelled,
           reversed = b.reversed + EXCLUDED.reversed, buffer_cancelled = b.buffer_cancelled + EXCLUDED.buffer_cancelled,
           holding_in = b.holding_in + EXCLUDED.holding_in, priced = b.priced + EXCLUDED.priced,
           value = b.value + EXCLUDED.value, postings = b.postings + EXCLUDED.postings;
    RETURN NULL;
END $$;
CREATE TRIGGER book_months_refine AFTER INSERT OR UPDATE ON book_months
    FOR EACH ROW EXECUTE FUNCTION book_months_refine();

-- flows row changed: add the difference, as measures in kilograms, to its vintage month.
CREATE FUNCTION flows_refine() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    d numeric := NEW.amount;
    dp numeric := NEW.priced;
    dv numeric := NEW.value;
    dn bigint := NEW.postings;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        d := d - OLD.amount;
        dp := dp - OLD.priced;
        dv := dv - OLD.value;
        dn := dn - OLD.postings;
    END IF;
    INSERT INTO vintage_months AS v (shard, month, vintage, recorded_month, contracted, replacements, open, delivered,
                                     holding, retired, cancelled, reversed, buffer_cancelled, holding_in, priced, value, postings)
    SELECT NEW.book_id % 16, date_trunc('month', NEW.effective_on)::date, NEW.vintage, date_trunc('month', NEW.recorded_on)::date,
           (m.contracted * 1000)::bigint, (m.replacements * 1000)::bigint, (m.open * 1000)::bigint,
           (m.delivered * 1000)::bigint, (m.holding * 1000)::bigint, (m.retired * 1000)::bigint,
           (m.cancelled * 1000)::bigint, (m.reversed * 1000)::bigint, (m.buffer_cancelled * 1000)::bigint,
           (m.holding_in * 1000)::bigint, (dp * 1000)::bigint, dv, dn
      FROM posting_measures(NEW.account_kind, NEW.kind, d) m
    ON CONFLICT (month, vintage, recorded_month, shard) DO UPDATE
       SET contracted = v.contracted + EXCLUDED.contracted, replacements = v.replacements + EXCLUDED.replacements,
           open = v.open + EXCLUDED.open, delivered = v.delivered + EXCLUDED.delivered, holding = v.holding + EXCLUDED.holding,
           retired = v.retired + EXCLUDED.retired, cancelled = v.cancelled + EXCLUDED.cancelled,
           reversed = v.reversed + EXCLUDED.reversed, buffer_cancelled = v.buffer_cancelled + EXCLUDED.buffer_cancelled,
           holding_in = v.holding_in + EXCLUDED.holding_in, priced = v.priced + EXCLUDED.priced,
           value = v.value + EXCLUDED.value, postings = v.postings + EXCLUDED.postings;
    RETURN NULL;
END $$;
CREATE TRIGGER flows_refine AFTER INSERT OR UPDATE ON flows
    FOR EACH ROW EXECUTE FUNCTION flows_refine();

-- What each should hold, from the rollup it refines (which the audit proves equal to the
-- postings): for the backfill below and for a bulk load.
CREATE VIEW book_months_effective_derived AS
SELECT book_id, month, contract_year, sum(contracted)::bigint AS contracted, sum(replacements)::bigint AS replacements,
       sum(open)::bigint AS open, sum(delivered)::bigint AS delivered, sum(holding)::bigint AS holding,
       sum(retired)::bigint AS retired, sum(cancelled)::bigint AS cancelled, sum(reversed)::bigint AS reversed,
       sum(buffer_cancelled)::bigint AS buffer_cancelled, sum(holding_in)::bigint AS holding_in,
       sum(priced)::bigint AS priced, sum(value) AS value, sum(postings)::bigint AS postings
  FROM book_months
 GROUP BY 1, 2, 3;

CREATE VIEW vintage_months_derived AS
SELECT (f.book_id % 16)::smallint AS shard, date_trunc('month', f.effective_on)::date AS month, f.vintage,
       date_trunc('month', f.recorded_on)::date AS recorded_month,
       (sum(m.contracted) * 1000)::bigint AS contracted, (sum(m.replacements) * 1000)::bigint AS replacements,
       (sum(m.open) * 1000)::bigint AS open, (sum(m.delivered) * 1000)::bigint AS delivered,
       (sum(m.holding) * 1000)::bigint AS holding, (sum(m.retired) * 1000)::bigint AS retired,
       (sum(m.cancelled) * 1000)::bigint AS cancelled, (sum(m.reversed) * 1000)::bigint AS reversed,
       (sum(m.buffer_cancelled) * 1000)::bigint AS buffer_cancelled, (sum(m.holding_in) * 1000)::bigint AS holding_in,
       (sum(f.priced) * 1000)::bigint AS priced, sum(f.value) AS value, sum(f.postings)::bigint AS postings
  FROM flows f CROSS JOIN LATERAL posting_measures(f.account_kind, f.kind, f.amount) m
 GROUP BY 1, 2, 3, 4;

ALTER TABLE book_months_effective DISABLE TRIGGER book_months_effective_guard;
INSERT INTO book_months_effective SELECT * FROM book_months_effective_derived;
ALTER TABLE book_months_effective ENABLE TRIGGER book_months_effective_guard;
ALTER TABLE vintage_months DISABLE TRIGGER vintage_months_guard;
INSERT INTO vintage_months SELECT * FROM vintage_months_derived;
ALTER TABLE vintage_months ENABLE TRIGGER vintage_months_guard;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT SELECT ON book_months_effective, vintage_months, book_months_effective_derived, vintage_months_derived
            TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;
