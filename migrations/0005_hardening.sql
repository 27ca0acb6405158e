-- Hardening found by attacking the schema in tests:
--   * a posting written after a savepoint (or inside a PL/pgSQL block with an EXCEPTION
--     clause) belongs to its entry's transaction even though the entry's xmin is then a
--     subtransaction id: "written in this transaction" now asks pg_xact_status, which knows
--     the current transaction's subtransactions, instead of comparing with the top-level id;
--   * the guards that let only the journal's own triggers move cached balances, chain heads and
--     rollups trusted any trigger (depth >= 2); a role could fire a trigger of its own on a
--     temporary table. They now also require the SECURITY DEFINER context: the table owner;
--   * an account or a book could be inserted with a balance or a chain head already set.

-- Whether a row whose xmin is x was written by the current transaction or one of its
-- subtransactions. A row another transaction has not committed is invisible to us, and one it
-- has committed reports 'committed', so 'in progress' can only be our own.
CREATE FUNCTION written_in_this_transaction(x xid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
    SELECT coalesce(pg_xact_status((((t.top / 4294967296)
               + CASE WHEN t.x32 < t.top % 4294967296 - 2147483648 THEN 1
                      WHEN t.x32 > t.top % 4294967296 + 2147483648 THEN -1 ELSE 0 END) * 4294967296
               + t.x32)::text::xid8) = 'in progress', false)
      FROM (SELECT pg_current_xact_id()::text::bigint AS top, x::text::bigint AS x32) t
$$;

-- Whether the current role owns the table a trigger fired on (true inside the journal's
-- SECURITY DEFINER triggers; false for the writer role, even from a trigger of its own).
CREATE FUNCTION acting_as_owner(rel oid) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT (SELECT relowner FROM pg_class WHERE oid = rel) = (SELECT oid FROM pg_roles WHERE rolname = current_user)
$$;

CREATE OR REPLACE FUNCTION accounts_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.code <> OLD.code OR NEW.book_id <> OLD.book_id OR NEW.kind <> OLD.kind
       OR NEW.floor IS DISTINCT FROM OLD.floor THEN
        RAISE EXCEPTION 'account %: code, book, kind and floor never change', OLD.code USING ERRCODE = 'CL001';
    END IF;
    IF NEW.balance <> OLD.balance AND (pg_trigger_depth() < 2 OR NOT acting_as_owner(TG_RELID)) THEN
        RAISE EXCEPTION 'account %: a balance changes only by posting an entry', OLD.code USING ERRCODE = 'CL001';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION books_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.code <> OLD.code OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'book %: code never changes', OLD.code USING ERRCODE = 'CL001';
    END IF;
    IF (NEW.head_seq, NEW.head_hash, NEW.head_recorded_at) IS DISTINCT FROM
       (OLD.head_seq, OLD.head_hash, OLD.head_recorded_at)
       AND (pg_trigger_depth() < 2 OR NOT acting_as_owner(TG_RELID)) THEN
        RAISE EXCEPTION 'book %: the chain head moves only by writing an entry', OLD.code USING ERRCODE = 'CL001';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION rollups_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 OR NOT acting_as_owner(TG_RELID) THEN
        RAISE EXCEPTION '%: report rollups change only by posting entries', TG_TABLE_NAME USING ERRCODE = 'CL001';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

-- New accounts start at zero; new books at the genesis of their chain.
CREATE FUNCTION accounts_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.balance <> 0 THEN
        RAISE EXCEPTION 'account %: an account starts with a balance of zero', NEW.code USING ERRCODE = 'CL001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_guard_insert BEFORE INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_guard_insert();

CREATE FUNCTION books_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.head_seq <> 0 OR NEW.head_hash <> '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
       OR NEW.head_recorded_at IS NOT NULL THEN
        RAISE EXCEPTION 'book %: a book starts at the genesis of its chain', NEW.code USING ERRCODE = 'CL001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER books_guard_insert BEFORE INSERT ON books
    FOR EACH ROW EXECUTE FUNCTION books_guard_insert();

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
    RETURN NULL;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT EXECUTE ON FUNCTION written_in_this_transaction(xid), acting_as_owner(oid)
            TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;
