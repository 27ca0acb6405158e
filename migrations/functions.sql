-- The live write path: every trigger function the journal's writes run, and the triggers that
-- bind them, in one place. The runner applies this file after the numbered migrations, in one
-- transaction, whenever its text differs from the copy the database last applied (recorded in
-- schema_functions), so a change to a body is made here and nowhere else. Every statement in
-- it is idempotent (CREATE OR REPLACE, DROP ... IF EXISTS before CREATE TRIGGER), and it may
-- rely on every table the numbered migrations create. Earlier numbered migrations still hold
-- the bodies they were written with: they are history, replaced by this file on every database.

-- Rollups change only from the posting trigger: any statement writing one of them from
-- outside it (pg_trigger_depth() < 2), or as a role other than their owner, is refused. A
-- statement-level guard costs one call per statement, not one per row.
CREATE OR REPLACE FUNCTION rollups_guard_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 OR NOT acting_as_owner(TG_RELID) THEN
        RAISE EXCEPTION '%: report rollups change only by posting entries', TG_TABLE_NAME USING ERRCODE = 'CL001';
    END IF;
    RETURN NULL;
END $$;


-- The rollups that refined other rollups row by row are written directly by the posting
-- trigger now, and the row-level bodies the statement-level ones replace are gone.
DROP TRIGGER IF EXISTS book_months_refine ON book_months;
DROP TRIGGER IF EXISTS flows_refine ON flows;
DROP FUNCTION IF EXISTS book_months_refine();
DROP FUNCTION IF EXISTS flows_refine();

-- The measures of a posting (which of a contract's figures its amount counts in), as a
-- set-returning SQL function of one SELECT without FROM, so that the planner inlines it into
-- the query that calls it instead of calling it once per posting (a batch of an import
-- carries ten thousand). posting_measures, which views and tests call, answers from it: the
-- mapping is written once (and tested equal to ledger.Measures).
CREATE OR REPLACE FUNCTION posting_measures_of(ak text, k text, a numeric)
    RETURNS TABLE (contracted numeric, replacements numeric, open numeric, delivered numeric, holding numeric,
                   retired numeric, cancelled numeric, reversed numeric, buffer_cancelled numeric, holding_in numeric)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 1 AS $$
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

CREATE OR REPLACE FUNCTION posting_measures(ak text, k text, a numeric,
    OUT contracted numeric, OUT replacements numeric, OUT open numeric, OUT delivered numeric, OUT holding numeric,
    OUT retired numeric, OUT cancelled numeric, OUT reversed numeric, OUT buffer_cancelled numeric, OUT holding_in numeric)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT * FROM posting_measures_of(ak, k, a)
$$;

-- A date's contract year (1 for the first year of the term, 0 before it), as one expression
-- the planner inlines (no subquery, not STRICT): the same answer as the body it replaces,
-- NULL when the term is (a plain journal book).
CREATE OR REPLACE FUNCTION contract_year(term_start date, term_end date, d date) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN d < term_start THEN 0 ELSE least(
        extract(year FROM d)::int - extract(year FROM term_start)::int
          + CASE WHEN (term_start + make_interval(years => extract(year FROM d)::int - extract(year FROM term_start)::int))::date > d
                 THEN 0 ELSE 1 END,
        extract(year FROM term_end)::int - extract(year FROM term_start)::int
          + CASE WHEN (term_start + make_interval(years => extract(year FROM term_end)::int - extract(year FROM term_start)::int))::date > term_end
                 THEN 0 ELSE 1 END)
    END
$$;

-- Whether a row's xmin is this transaction or one of its subtransactions (a savepoint), as
-- one expression the planner inlines: the 32-bit xid widened with the current epoch (less
-- one when it wrapped since), then asked of the commit log. VOLATILE because its body is
-- (pg_current_xact_id, pg_xact_status): the planner inlines a function only when the body is
-- no more volatile than the declaration, so declared STABLE it ran as a SQL function of its
-- own, planned once per statement and executed once per row.
CREATE OR REPLACE FUNCTION written_in_this_transaction(x xid) RETURNS boolean
    LANGUAGE sql VOLATILE PARALLEL RESTRICTED AS $$
    SELECT coalesce(pg_xact_status((((pg_current_xact_id()::text::bigint / 4294967296)
               + CASE WHEN x::text::bigint < pg_current_xact_id()::text::bigint % 4294967296 - 2147483648 THEN 1
                      WHEN x::text::bigint > pg_current_xact_id()::text::bigint % 4294967296 + 2147483648 THEN -1 ELSE 0 END) * 4294967296
               + x::text::bigint)::text::xid8) = 'in progress', false)
$$;

-- One posting as the rollups see it: its keys and its measures (posting_measures').
DROP TYPE IF EXISTS posting_fact CASCADE;
CREATE TYPE posting_fact AS (
    entry_id uuid, ours boolean, entry_book bigint, account_code text,
    account_id bigint, amount numeric, book_id bigint, effective_on date, month date, recorded_on date,
    recorded_month date, vintage smallint, k text, ak text, cy integer, pr numeric, val numeric,
    contracted numeric, replacements numeric, open numeric, delivered numeric, holding numeric, retired numeric,
    cancelled numeric, reversed numeric, buffer_cancelled numeric, holding_in numeric);

-- Postings, per INSERT statement (however many rows it carries): each belongs to an entry
-- written in this very transaction and to an account of the entry's book, and none draws on a
-- retired account; then the cached balances move (their CHECK enforces the floors) and every
-- rollup takes the statement's postings aggregated by its key: one upsert per rollup row
-- touched, not one per posting. A correction counts under the kind it corrects (reverts_kind);
-- delivered tonnes carry the price of their delivery. The postings are read from the
-- transition table once, into an array: statements that name a transition table are planned
-- again on every call, and the upserts below, which read the array, keep their plans. (For
-- the same reason the four kilogram rollups' upserts are written out one by one, not built
-- with EXECUTE: a dynamic statement is planned on every call too.)
CREATE OR REPLACE FUNCTION postings_apply() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    bad posting_fact;
    facts posting_fact[];
BEGIN
    -- One read of the transition table (each is planned anew): the facts, and what the checks need.
    SELECT array_agg(ROW(p.entry_id, written_in_this_transaction(e.xmin), e.book_id, a.code,
                         p.account_id, p.amount, a.book_id, e.effective_on, date_trunc('month', e.effective_on)::date,
                         (e.recorded_at AT TIME ZONE 'UTC')::date, date_trunc('month', e.recorded_at AT TIME ZONE 'UTC')::date,
                         coalesce(e.vintage, 0), k.k, a.kind,
                         coalesce(contract_year(c.term_start, c.term_end, e.effective_on), 0),
                         CASE WHEN pz.price IS NULL THEN 0 ELSE p.amount END, coalesce(p.amount * pz.price, 0),
                         m.contracted, m.replacements, m.open, m.delivered, m.holding, m.retired, m.cancelled, m.reversed,
                         m.buffer_cancelled, m.holding_in)::posting_fact)
      INTO facts
      FROM new_postings p
      JOIN entries e ON e.id = p.entry_id
      JOIN accounts a ON a.id = p.account_id
      LEFT JOIN contracts c ON c.book_id = e.book_id
      LEFT JOIN entries o ON o.id = e.reverts
      CROSS JOIN LATERAL (SELECT coalesce(e.reverts_kind, e.kind) AS k) k
      CROSS JOIN LATERAL (SELECT CASE WHEN k.k = 'deliver' AND a.kind IN ('holding', 'retired')
                                      THEN (coalesce(o.metadata, e.metadata)->>'price_per_tonne')::numeric END AS price) pz
      CROSS JOIN LATERAL posting_measures_of(a.kind, k.k, p.amount) m;
    IF facts IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH bad IN ARRAY facts LOOP
        IF NOT bad.ours THEN
            RAISE EXCEPTION 'posting to entry %: postings are written only with their entry', bad.entry_id
                USING ERRCODE = 'CL004';
        ELSIF bad.book_id <> bad.entry_book THEN
            RAISE EXCEPTION 'posting to entry %: account % belongs to another book', bad.entry_id, bad.account_code
                USING ERRCODE = 'CL004';
        ELSIF bad.ak = 'retired' AND bad.amount < 0 THEN
            RAISE EXCEPTION 'account %: retired tonnes are final and never leave a retired account', bad.account_code
                USING ERRCODE = 'CL005';
        END IF;
    END LOOP;

    UPDATE accounts a SET balance = a.balance + d.amount
      FROM (SELECT account_id, sum(amount) AS amount FROM unnest(facts) GROUP BY account_id) d
     WHERE a.id = d.account_id;

    INSERT INTO flows AS f (account_id, effective_on, recorded_on, vintage, kind, book_id, account_kind, contract_year,
                            amount, priced, value, postings)
    SELECT account_id, effective_on, recorded_on, vintage, k, book_id, ak, cy, sum(amount), sum(pr), sum(val), count(*)
      FROM unnest(facts) GROUP BY account_id, effective_on, recorded_on, vintage, k, book_id, ak, cy
    ON CONFLICT (account_id, effective_on, recorded_on, vintage, kind) DO UPDATE
       SET amount = f.amount + EXCLUDED.amount, priced = f.priced + EXCLUDED.priced,
           value = f.value + EXCLUDED.value, postings = f.postings + EXCLUDED.postings;

    INSERT INTO flows_monthly AS f (account_id, month, contract_year, vintage, kind, book_id, account_kind,
                                    amount, priced, value, postings)
    SELECT account_id, month, cy, vintage, k, book_id, ak, sum(amount), sum(pr), sum(val), count(*)
      FROM unnest(facts) GROUP BY account_id, month, cy, vintage, k, book_id, ak
    ON CONFLICT (account_id, month, contract_year, vintage, kind) DO UPDATE
       SET amount = f.amount + EXCLUDED.amount, priced = f.priced + EXCLUDED.priced,
           value = f.value + EXCLUDED.value, postings = f.postings + EXCLUDED.postings;

    INSERT INTO book_months AS b (book_id, month, contract_year, recorded_month, contracted, replacements, open,
                                  delivered, holding, retired, cancelled, reversed, buffer_cancelled, holding_in,
                                  priced, value, postings)
    SELECT book_id, month, cy, recorded_month,
           (sum(contracted) * 1000)::bigint, (sum(replacements) * 1000)::bigint, (sum(open) * 1000)::bigint,
           (sum(delivered) * 1000)::bigint, (sum(holding) * 1000)::bigint, (sum(retired) * 1000)::bigint,
           (sum(cancelled) * 1000)::bigint, (sum(reversed) * 1000)::bigint, (sum(buffer_cancelled) * 1000)::bigint,
           (sum(holding_in) * 1000)::bigint, (sum(pr) * 1000)::bigint, sum(val), count(*)
      FROM unnest(facts) GROUP BY book_id, month, cy, recorded_month
    ON CONFLICT (book_id, month, contract_year, recorded_month) DO UPDATE
       SET contracted = b.contracted + EXCLUDED.contracted, replacements = b.replacements + EXCLUDED.replacements,
           open = b.open + EXCLUDED.open, delivered = b.delivered + EXCLUDED.delivered, holding = b.holding + EXCLUDED.holding,
           retired = b.retired + EXCLUDED.retired, cancelled = b.cancelled + EXCLUDED.cancelled,
           reversed = b.reversed + EXCLUDED.reversed, buffer_cancelled = b.buffer_cancelled + EXCLUDED.buffer_cancelled,
           holding_in = b.holding_in + EXCLUDED.holding_in, priced = b.priced + EXCLUDED.priced,
           value = b.value + EXCLUDED.value, postings = b.postings + EXCLUDED.postings;

    INSERT INTO book_months_effective AS b (book_id, month, contract_year, contracted, replacements, open, delivered,
                                            holding, retired, cancelled, reversed, buffer_cancelled, holding_in,
                                            priced, value, postings)
    SELECT book_id, month, cy,
           (sum(contracted) * 1000)::bigint, (sum(replacements) * 1000)::bigint, (sum(open) * 1000)::bigint,
           (sum(delivered) * 1000)::bigint, (sum(holding) * 1000)::bigint, (sum(retired) * 1000)::bigint,
           (sum(cancelled) * 1000)::bigint, (sum(reversed) * 1000)::bigint, (sum(buffer_cancelled) * 1000)::bigint,
           (sum(holding_in) * 1000)::bigint, (sum(pr) * 1000)::bigint, sum(val), count(*)
      FROM unnest(facts) GROUP BY book_id, month, cy
    ON CONFLICT (book_id, month, contract_year) DO UPDATE
       SET contracted = b.contracted + EXCLUDED.contracted, replacements = b.replacements + EXCLUDED.replacements,
           open = b.open + EXCLUDED.open, delivered = b.delivered + EXCLUDED.delivered, holding = b.holding + EXCLUDED.holding,
           retired = b.retired + EXCLUDED.retired, cancelled = b.cancelled + EXCLUDED.cancelled,
           reversed = b.reversed + EXCLUDED.reversed, buffer_cancelled = b.buffer_cancelled + EXCLUDED.buffer_cancelled,
           holding_in = b.holding_in + EXCLUDED.holding_in, priced = b.priced + EXCLUDED.priced,
           value = b.value + EXCLUDED.value, postings = b.postings + EXCLUDED.postings;

    INSERT INTO book_years AS b (book_id, contract_year, contracted, replacements, open, delivered, holding, retired,
                                 cancelled, reversed, buffer_cancelled, holding_in, priced, value, postings)
    SELECT book_id, cy,
           (sum(contracted) * 1000)::bigint, (sum(replacements) * 1000)::bigint, (sum(open) * 1000)::bigint,
           (sum(delivered) * 1000)::bigint, (sum(holding) * 1000)::bigint, (sum(retired) * 1000)::bigint,
           (sum(cancelled) * 1000)::bigint, (sum(reversed) * 1000)::bigint, (sum(buffer_cancelled) * 1000)::bigint,
           (sum(holding_in) * 1000)::bigint, (sum(pr) * 1000)::bigint, sum(val), count(*)
      FROM unnest(facts) GROUP BY book_id, cy
    ON CONFLICT (book_id, contract_year) DO UPDATE
       SET contracted = b.contracted + EXCLUDED.contracted, replacements = b.replacements + EXCLUDED.replacements,
           open = b.open + EXCLUDED.open, delivered = b.delivered + EXCLUDED.delivered, holding = b.holding + EXCLUDED.holding,
           retired = b.retired + EXCLUDED.retired, cancelled = b.cancelled + EXCLUDED.cancelled,
           reversed = b.reversed + EXCLUDED.reversed, buffer_cancelled = b.buffer_cancelled + EXCLUDED.buffer_cancelled,
           holding_in = b.holding_in + EXCLUDED.holding_in, priced = b.priced + EXCLUDED.priced,
           value = b.value + EXCLUDED.value, postings = b.postings + EXCLUDED.postings;

    -- vintage_months' rows are shared by the contracts of a shard, which two transactions
    -- writing different contracts may both move: each takes its rows in key order, so
    -- that one waits for the other rather than deadlock.
    INSERT INTO vintage_months AS v (shard, month, vintage, recorded_month, contracted, replacements, open, delivered,
                                     holding, retired, cancelled, reversed, buffer_cancelled, holding_in, priced, value,
                                     postings)
    SELECT (book_id % 16)::smallint, month, vintage, recorded_month,
           (sum(contracted) * 1000)::bigint, (sum(replacements) * 1000)::bigint, (sum(open) * 1000)::bigint,
           (sum(delivered) * 1000)::bigint, (sum(holding) * 1000)::bigint, (sum(retired) * 1000)::bigint,
           (sum(cancelled) * 1000)::bigint, (sum(reversed) * 1000)::bigint, (sum(buffer_cancelled) * 1000)::bigint,
           (sum(holding_in) * 1000)::bigint, (sum(pr) * 1000)::bigint, sum(val), count(*)
      FROM unnest(facts) GROUP BY book_id % 16, month, vintage, recorded_month
     ORDER BY month, vintage, recorded_month, book_id % 16
    ON CONFLICT (month, vintage, recorded_month, shard) DO UPDATE
       SET contracted = v.contracted + EXCLUDED.contracted, replacements = v.replacements + EXCLUDED.replacements,
           open = v.open + EXCLUDED.open, delivered = v.delivered + EXCLUDED.delivered, holding = v.holding + EXCLUDED.holding,
           retired = v.retired + EXCLUDED.retired, cancelled = v.cancelled + EXCLUDED.cancelled,
           reversed = v.reversed + EXCLUDED.reversed, buffer_cancelled = v.buffer_cancelled + EXCLUDED.buffer_cancelled,
           holding_in = v.holding_in + EXCLUDED.holding_in, priced = v.priced + EXCLUDED.priced,
           value = v.value + EXCLUDED.value, postings = v.postings + EXCLUDED.postings;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS postings_apply ON postings;
CREATE TRIGGER postings_apply AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_apply();

-- Entries, per INSERT or COPY statement (however many rows it carries): each book's new
-- entries extend its chain in seq order from the head (the next seq, the previous hash), are
-- recorded at this transaction's clock and never before the entry they follow, and a
-- correction names an entry of its own book and that entry's kind; then each book's head
-- moves once, to its last new entry. The books are locked first, in id order, so writers
-- wait for each other here rather than deadlock. One statement per batch, not one call and
-- one head update per row: within a long import a row updated once per entry would leave a
-- chain of versions every later lookup walks. (The unique (book_id, seq) index refuses a
-- second entry at a seq before this runs.)
CREATE OR REPLACE FUNCTION entries_chain_apply() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    bad record;
BEGIN
    PERFORM 1 FROM books WHERE id IN (SELECT book_id FROM new_entries) ORDER BY id FOR UPDATE;
    SELECT n.id, b.code, n.seq, coalesce(n.pseq, b.head_seq) AS after_seq,
           n.seq <> coalesce(n.pseq, b.head_seq) + 1 OR n.prev_hash <> coalesce(n.phash, b.head_hash) AS broken,
           n.recorded_at
      INTO bad
      FROM (SELECT e.id, e.book_id, e.seq, e.prev_hash, e.recorded_at,
                   lag(e.seq) OVER w AS pseq, lag(e.hash) OVER w AS phash, lag(e.recorded_at) OVER w AS precorded
              FROM new_entries e WINDOW w AS (PARTITION BY e.book_id ORDER BY e.seq)) n
      JOIN books b ON b.id = n.book_id
     WHERE n.seq <> coalesce(n.pseq, b.head_seq) + 1 OR n.prev_hash <> coalesce(n.phash, b.head_hash)
        OR n.recorded_at < now() OR n.recorded_at > clock_timestamp()
        OR n.recorded_at < coalesce(n.precorded, b.head_recorded_at)
     ORDER BY n.book_id, n.seq
     LIMIT 1;
    IF FOUND THEN
        IF bad.broken THEN
            RAISE EXCEPTION 'entry % does not extend the chain of book %: seq % after head %',
                bad.id, bad.code, bad.seq, bad.after_seq USING ERRCODE = 'CL003';
        END IF;
        RAISE EXCEPTION 'entry %: recorded_at % is not this transaction''s clock', bad.id, bad.recorded_at
            USING ERRCODE = 'CL006';
    END IF;
    SELECT n.id, n.reverts INTO bad
      FROM new_entries n LEFT JOIN entries t ON t.id = n.reverts
     WHERE n.reverts IS NOT NULL
       AND (t.book_id IS DISTINCT FROM n.book_id OR t.kind IS DISTINCT FROM n.reverts_kind)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry % reverts % of another book or kind', bad.id, bad.reverts USING ERRCODE = 'CL004';
    END IF;
    UPDATE books b SET head_seq = l.seq, head_hash = l.hash, head_recorded_at = l.recorded_at
      FROM (SELECT DISTINCT ON (book_id) book_id, seq, hash, recorded_at
              FROM new_entries ORDER BY book_id, seq DESC) l
     WHERE b.id = l.book_id;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS entries_chain ON entries;
DROP TRIGGER IF EXISTS entries_chain_apply ON entries;
CREATE TRIGGER entries_chain_apply AFTER INSERT ON entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_chain_apply();

-- The cached balances and the chain heads move only inside the journal's own triggers. The
-- writer role has no UPDATE privilege on accounts or books (it locks a book through
-- lock_book or operation_state below), so privileges keep it out; the guards refuse any
-- other direct change, even by the owner, and their WHEN clauses keep the journal's own
-- updates (inside a trigger, changing no identity column) from calling them at all.
DROP TRIGGER IF EXISTS accounts_guard ON accounts;
CREATE TRIGGER accounts_guard BEFORE UPDATE ON accounts FOR EACH ROW
    WHEN (pg_trigger_depth() < 1 OR NEW.id <> OLD.id OR NEW.code <> OLD.code OR NEW.book_id <> OLD.book_id
          OR NEW.kind <> OLD.kind OR NEW.floor IS DISTINCT FROM OLD.floor)
    EXECUTE FUNCTION accounts_guard_update();
DROP TRIGGER IF EXISTS books_guard ON books;
CREATE TRIGGER books_guard BEFORE UPDATE ON books FOR EACH ROW
    WHEN (pg_trigger_depth() < 1 OR NEW.id <> OLD.id OR NEW.code <> OLD.code OR NEW.created_at <> OLD.created_at)
    EXECUTE FUNCTION books_guard_update();
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['flows', 'flows_monthly', 'book_months', 'book_years', 'book_months_effective', 'vintage_months'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_guard', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE ON %I FOR EACH STATEMENT
                        WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION rollups_guard_statement()', t || '_guard', t);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        REVOKE UPDATE ON accounts, books FROM carbonledger_writer;
    END IF;
END $$;

-- A book's row, locked for a write.
CREATE OR REPLACE FUNCTION lock_book(p_code text) RETURNS SETOF books
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT * FROM books WHERE code = p_code FOR UPDATE
$$;

-- A book's accounts as a write checks them (kind, floor, cached balance, and the last
-- effective date they moved on: a movement dated on or after it cannot overdraw any earlier
-- day), and the clock that seals the entry.
CREATE OR REPLACE FUNCTION book_accounts(p_book bigint) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object('now', clock_timestamp(), 'accounts', coalesce(jsonb_agg(jsonb_build_object(
               'id', a.id, 'code', a.code, 'kind', a.kind, 'floor', a.floor::text, 'balance', a.balance::text,
               'last_on', l.last_on) ORDER BY a.id), '[]'))
      FROM accounts a
      LEFT JOIN LATERAL (SELECT max(f.effective_on) AS last_on FROM flows f WHERE f.account_id = a.id) l ON true
     WHERE a.book_id = p_book);
END $$;

-- What one serial number stands for under a registry, in tonnes: a kilogram under Isometric,
-- which counts credits to the kilogram, a tonne elsewhere (ledger.SerialUnitKg; a test holds
-- the two equal).
CREATE OR REPLACE FUNCTION serial_unit_tonnes(p_registry text) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_registry = 'isometric' THEN 0.001 ELSE 1 END::numeric
$$;

-- A contract as the domain sees it: its book's head, its terms, its schedule in force, its
-- position by account kind and entry kind (from flows_monthly, which the posting trigger
-- keeps equal to the postings), the tonnes of serials it holds as delivered, and the date of
-- a termination that was not reverted. NULL when the book has no contract. Reads call it for
-- any number of contracts in one query; operation_state calls it after the book's lock.
-- (PL/pgSQL, not SQL, here and in book_accounts: a SQL function's body is parsed and planned
-- again on every call, a PL/pgSQL one's plan is kept by each connection.)
CREATE OR REPLACE FUNCTION contract_state(p_book bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object(
        'book', jsonb_build_object('id', b.id, 'code', b.code, 'head_seq', b.head_seq, 'head_hash', encode(b.head_hash, 'hex')),
        'contract', jsonb_build_object('id', c.id, 'book_id', c.book_id, 'code', c.code, 'buyer', c.buyer,
            'supplier', c.supplier, 'project', c.project, 'method', c.method, 'country', c.country, 'region', c.region,
            'registry', c.registry, 'registry_projects', to_jsonb(c.registry_projects), 'registry_accounts', to_jsonb(c.registry_accounts),
            'standard', c.standard, 'durability_years', c.durability_years,
            'durability_at_least', c.durability_at_least, 'term_start', c.term_start, 'term_end', c.term_end,
            'signed_on', c.signed_on, 'tonnes', c.tonnes::text, 'price_per_tonne', c.price_per_tonne::text,
            'currency', c.currency, 'delivery_mode', c.delivery_mode,
            'over_delivery_tolerance', c.over_delivery_tolerance::text, 'notes', c.notes),
        'schedule', (SELECT coalesce(jsonb_agg(jsonb_build_object('version', s.version, 'explicit', s.explicit,
                            'year', s.year, 'tonnes', s.tonnes::text, 'vintage', s.vintage,
                            'price_per_tonne', s.price_per_tonne::text, 'due_on', s.due_on) ORDER BY s.year), '[]')
                       FROM schedule_lines s
                      WHERE s.contract_id = c.id
                        AND s.version = (SELECT max(version) FROM schedule_lines WHERE contract_id = c.id)),
        'position', (SELECT coalesce(jsonb_agg(jsonb_build_object('account_kind', p.account_kind, 'kind', p.kind,
                            'amount', p.amount::text)), '[]')
                       FROM (SELECT account_kind, kind, sum(amount) AS amount FROM flows_monthly
                              WHERE book_id = b.id GROUP BY 1, 2) p),
        'serialized', (SELECT coalesce(sum((upper(serials) - lower(serials)) * serial_unit_tonnes(registry)), 0)::text FROM serial_blocks
                        WHERE contract_id = c.id AND state = 'delivered'),
        'terminated', (SELECT min(e.effective_on) FROM entries e
                        WHERE e.book_id = b.id AND e.kind = 'cancel' AND e.metadata->>'terminate' = 'true'
                          AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.reverts = e.id)))
      FROM books b JOIN contracts c ON c.book_id = b.id
     WHERE b.id = p_book);
END $$;

-- Everything an operation under a contract reads, in one call: it locks the contract's book,
-- then (each statement of a VOLATILE function taking a fresh snapshot, so what a writer we
-- waited for committed is seen) looks the idempotency key up, and returns contract_state
-- with the book's accounts and the clock. A key already used returns only {"replay": ...},
-- or {"kept": true} when the API keeps another kind of answer under it; an unknown contract
-- returns {}.
CREATE OR REPLACE FUNCTION operation_state(p_code text, p_key text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    b books%ROWTYPE;
    prior record;
    st jsonb;
BEGIN
    SELECT * INTO b FROM books WHERE code = p_code FOR UPDATE;
    SELECT id, request_sha256 INTO prior FROM entries WHERE idempotency_key = p_key;
    IF FOUND THEN
        RETURN jsonb_build_object('replay', jsonb_build_object('id', prior.id, 'request', encode(prior.request_sha256, 'hex')));
    END IF;
    -- A key the API used for an answer that is not an entry (a batch, a statement) is taken.
    IF EXISTS (SELECT 1 FROM api_responses WHERE idempotency_key = p_key) THEN
        RETURN '{"kept": true}';
    END IF;
    st := contract_state(b.id);
    IF st IS NULL THEN
        RETURN '{}';
    END IF;
    RETURN book_accounts(b.id) || st;
END $$;

-- The names among p_names that are not an active API token (revoked, or none such): the API
-- may answer a write from a token it kept, and the write's own transaction then asks here,
-- so that a token revoked before it is refused whatever the server kept.
CREATE OR REPLACE FUNCTION tokens_revoked(p_names text[]) RETURNS text[]
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(n), '{}') FROM unnest(p_names) n
             WHERE NOT EXISTS (SELECT 1 FROM api_tokens t WHERE t.name = n AND t.revoked_at IS NULL));
END $$;

-- What a group of operations written in one transaction (the store's group commit) needs
-- first, in one call: the books of p_codes locked, in code order, skipping any that another
-- transaction holds (their operations are written on their own rather than wait here with
-- the whole group), with their heads; then (a fresh snapshot, after the locks) which of
-- p_keys an entry holds, which the API keeps another answer under, which of the API tokens
-- p_tokens are no longer active, and the clock.
DROP FUNCTION IF EXISTS lock_group(text[], text[]);
CREATE OR REPLACE FUNCTION lock_group(p_codes text[], p_keys text[], p_tokens text[]) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    heads jsonb;
BEGIN
    SELECT coalesce(jsonb_object_agg(l.code, l.head_seq), '{}') INTO heads
      FROM (SELECT code, head_seq FROM books WHERE code = ANY(p_codes) ORDER BY code FOR UPDATE SKIP LOCKED) l;
    RETURN jsonb_build_object('now', clock_timestamp(), 'books', heads,
        'used', (SELECT coalesce(jsonb_object_agg(idempotency_key, true), '{}') FROM entries WHERE idempotency_key = ANY(p_keys)),
        'kept', (SELECT coalesce(jsonb_object_agg(idempotency_key, true), '{}') FROM api_responses WHERE idempotency_key = ANY(p_keys)),
        'revoked', to_jsonb(tokens_revoked(p_tokens)));
END $$;

-- A group's entries, then their postings, as the columns of each: two statements whose plans
-- each connection keeps (sent as one statement of its own, the insert was parsed and planned
-- again for every group). It runs with the caller's rights: the writer's INSERT privilege,
-- and the triggers that check and apply what it writes.
CREATE OR REPLACE FUNCTION write_group(p_id uuid[], p_book bigint[], p_seq bigint[], p_kind text[], p_eff date[],
    p_rec timestamptz[], p_key text[], p_req bytea[], p_descr text[], p_vintage smallint[], p_meta jsonb[],
    p_hash_version smallint, p_prev bytea[], p_hash bytea[], p_entry uuid[], p_account bigint[], p_amount numeric[])
    RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO entries (id, book_id, seq, kind, effective_on, recorded_at, idempotency_key, request_sha256,
                         description, vintage, metadata, hash_version, prev_hash, hash)
    SELECT u.id, u.book, u.seq, u.kind, u.eff, u.rec, u.key, u.req, u.descr, u.vintage, u.meta, p_hash_version, u.prev, u.hash
      FROM unnest(p_id, p_book, p_seq, p_kind, p_eff, p_rec, p_key, p_req, p_descr, p_vintage, p_meta, p_prev, p_hash)
           AS u(id, book, seq, kind, eff, rec, key, req, descr, vintage, meta, prev, hash)
     ORDER BY u.book, u.seq;
    INSERT INTO postings (entry_id, account_id, amount)
    SELECT u.e, u.a, u.m FROM unnest(p_entry, p_account, p_amount) AS u(e, a, m);
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT EXECUTE ON FUNCTION lock_book(text), book_accounts(bigint), operation_state(text, text),
            lock_group(text[], text[], text[]), tokens_revoked(text[]),
            write_group(uuid[], bigint[], bigint[], text[], date[], timestamptz[], text[], bytea[], text[], smallint[], jsonb[],
                        smallint, bytea[], bytea[], uuid[], bigint[], numeric[])
            TO carbonledger_writer;
        GRANT EXECUTE ON FUNCTION posting_measures_of(text, text, numeric) TO carbonledger_writer, carbonledger_reader;
        -- A binary checks the schema version before it runs: a login role that is a member of
        -- the writer and reader roles only (not the owner, so that no RESET ROLE leads back
        -- to the owner's rights) can run the server and the CLI.
        GRANT SELECT ON schema_migrations, schema_functions TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;

-- Bodies no trigger calls any more.
DROP FUNCTION IF EXISTS postings_after_insert();
DROP FUNCTION IF EXISTS entries_before_insert();
DROP FUNCTION IF EXISTS rollups_guard();

-- Serial blocks, schedule versions and serial events are bookkeeping of entries: they change
-- only in the transaction that writes their entry. A writer cannot, with a statement of its
-- own, delete a delivered block (so that its serials could be delivered again), make one up,
-- or add a schedule version or a serial event to an entry already sealed; even the owner
-- needs the triggers off for that, which the audit then catches. A block's change is checked
-- against its contract's newest entry (the head of its book), since a block split by a
-- retirement keeps its delivery's entry.
CREATE OR REPLACE FUNCTION serial_blocks_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cid bigint;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.state = 'retired' THEN
        RAISE EXCEPTION 'serials %:% are retired; a retired serial never changes again', OLD.prefix, OLD.serials
            USING ERRCODE = 'CL005';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.registry, NEW.prefix, NEW.contract_id) IS DISTINCT FROM (OLD.registry, OLD.prefix, OLD.contract_id) THEN
        RAISE EXCEPTION 'serial block %: registry, series and contract never change', OLD.id USING ERRCODE = 'CL001';
    END IF;
    cid := CASE WHEN TG_OP = 'DELETE' THEN OLD.contract_id ELSE NEW.contract_id END;
    IF NOT EXISTS (SELECT 1 FROM contracts c JOIN books b ON b.id = c.book_id
                     JOIN entries e ON e.book_id = b.id AND e.seq = b.head_seq
                    WHERE c.id = cid AND written_in_this_transaction(e.xmin)) THEN
        RAISE EXCEPTION 'serial blocks of contract %: serials move only with an entry of their contract, in its transaction', cid
            USING ERRCODE = 'CL004';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS serial_blocks_guard ON serial_blocks;
CREATE TRIGGER serial_blocks_guard BEFORE INSERT OR UPDATE OR DELETE ON serial_blocks
    FOR EACH ROW EXECUTE FUNCTION serial_blocks_guard();

CREATE OR REPLACE FUNCTION entry_rows_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad uuid;
BEGIN
    SELECT n.entry_id INTO bad FROM new_rows n JOIN entries e ON e.id = n.entry_id
     WHERE NOT written_in_this_transaction(e.xmin) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%: rows of entry % are written only with their entry', TG_TABLE_NAME, bad USING ERRCODE = 'CL004';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS schedule_lines_with_entry ON schedule_lines;
CREATE TRIGGER schedule_lines_with_entry AFTER INSERT ON schedule_lines REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION entry_rows_guard();
DROP TRIGGER IF EXISTS serial_events_with_entry ON serial_events;
CREATE TRIGGER serial_events_with_entry AFTER INSERT ON serial_events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION entry_rows_guard();

-- Every function that runs with the owner's rights (SECURITY DEFINER) or as a trigger looks
-- names up in this schema and then in pg_temp, never in pg_temp first. PostgreSQL searches a
-- session's temporary schema before the others unless search_path names it: a writer could
-- otherwise create a temporary table called entries, books, accounts or postings and have
-- the journal's own triggers check that instead (append postings to a sealed entry, write an
-- entry off its chain, pass an unbalanced entry). Run last, so that it covers the functions
-- this file has just replaced and the ones the numbered migrations created; a numbered
-- migration that replaces a trigger function gets it again only when this file changes, so
-- such a migration pins search_path the same way itself (a test checks every function).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = current_schema()::regnamespace
                AND (p.prosecdef OR p.prorettype = 'trigger'::regtype)
                AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
    END LOOP;
END $$;
