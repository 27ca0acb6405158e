-- The double-entry journal: books (one hash chain each), accounts with cached balances,
-- entries and postings. Every guarantee the Go code keeps is also kept here, so that a bug,
-- a script or a person with psql cannot make the journal lie:
--   * an entry balances to zero and has at least two non-zero postings (deferred check);
--   * entries and postings are append-only (UPDATE, DELETE and TRUNCATE are refused);
--   * a posting can only be added in the transaction that wrote its entry, to an account of
--     the entry's own book;
--   * cached balances change only through postings, so they never drift from their sum;
--   * an account with a floor never goes below it; nothing ever leaves a retired account;
--   * each entry extends its book's hash chain at the next position, and its recorded time is
--     the database clock at write time.
-- Custom SQLSTATEs (class CL) let the store map each refusal to a domain error.

-- Amounts are unconstrained numerics with a scale CHECK: numeric(p,3) would silently round
-- 1.0004 to 1.000, and a ledger must refuse such input, not round it.
CREATE DOMAIN tonnes AS numeric
    CHECK (scale(VALUE) <= 3 AND abs(VALUE) < 1e18);

CREATE TABLE books (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code             text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9-]{0,47}$'),
    head_seq         bigint NOT NULL DEFAULT 0 CHECK (head_seq >= 0),
    head_hash        bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'
                     CHECK (length(head_hash) = 32),
    head_recorded_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code    text NOT NULL UNIQUE
            CHECK (code ~ '^[a-z0-9][a-z0-9-]*(:[A-Za-z0-9][A-Za-z0-9_-]*)+$' AND length(code) <= 200),
    book_id bigint NOT NULL REFERENCES books (id),
    kind    text NOT NULL CHECK (kind IN ('supply', 'open', 'holding', 'retired', 'cancelled',
                                          'reversed', 'buffer', 'buffer_cancelled', 'asset', 'equity')),
    -- the lowest balance allowed; NULL only for the kinds that may go negative
    floor   tonnes CHECK (floor <= 0),
    balance tonnes NOT NULL DEFAULT 0,
    CONSTRAINT accounts_floor_by_kind CHECK ((kind IN ('supply', 'buffer', 'equity')) = (floor IS NULL)),
    CONSTRAINT accounts_balance_floor CHECK (floor IS NULL OR balance >= floor)
);
CREATE INDEX accounts_book ON accounts (book_id);

CREATE TABLE entries (
    id              uuid PRIMARY KEY,
    book_id         bigint NOT NULL REFERENCES books (id),
    seq             bigint NOT NULL CHECK (seq >= 1),
    kind            text NOT NULL CHECK (kind IN ('open', 'transfer', 'sign', 'amend', 'deliver',
                                                  'retire', 'cancel', 'reverse', 'revert')),
    effective_on    date NOT NULL,
    recorded_at     timestamptz NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_sha256  bytea NOT NULL CHECK (length(request_sha256) = 32),
    description     text NOT NULL CHECK (length(description) <= 1000),
    reverts         uuid REFERENCES entries (id),
    -- the kind of the reverted entry, kept here so rollups attribute a correction to the
    -- figure it corrects; the insert trigger checks it against the original
    reverts_kind    text,
    vintage         smallint CHECK (vintage BETWEEN 1990 AND 2200),
    metadata        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    hash_version    smallint NOT NULL CHECK (hash_version = 1),
    prev_hash       bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT entries_book_seq UNIQUE (book_id, seq),
    CONSTRAINT entries_idempotency_key UNIQUE (idempotency_key),
    CONSTRAINT entries_reverted_once UNIQUE (reverts),
    CONSTRAINT entries_revert_has_target CHECK ((kind = 'revert') = (reverts IS NOT NULL)),
    CONSTRAINT entries_revert_kind CHECK ((reverts IS NULL) = (reverts_kind IS NULL)
                                          AND coalesce(reverts_kind, '') NOT IN ('revert', 'retire'))
);
CREATE INDEX entries_recorded_at ON entries (recorded_at);

CREATE TABLE postings (
    entry_id   uuid NOT NULL REFERENCES entries (id),
    account_id bigint NOT NULL REFERENCES accounts (id),
    amount     tonnes NOT NULL CONSTRAINT postings_nonzero CHECK (amount <> 0),
    PRIMARY KEY (entry_id, account_id)
);
CREATE INDEX postings_account ON postings (account_id);

-- Append-only: no UPDATE, DELETE or TRUNCATE of the journal, whoever asks.
CREATE FUNCTION journal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: % on % is refused; correct a mistake with a reverting entry',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'CL001';
END $$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER books_no_delete BEFORE DELETE ON books
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER books_no_truncate BEFORE TRUNCATE ON books
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- Cached balances and chain heads change only from the journal's own triggers (trigger
-- depth > 1); an account's identity, kind and floor never change.
CREATE FUNCTION accounts_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.code <> OLD.code OR NEW.book_id <> OLD.book_id OR NEW.kind <> OLD.kind
       OR NEW.floor IS DISTINCT FROM OLD.floor THEN
        RAISE EXCEPTION 'account %: code, book, kind and floor never change', OLD.code USING ERRCODE = 'CL001';
    END IF;
    IF NEW.balance <> OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'account %: a balance changes only by posting an entry', OLD.code USING ERRCODE = 'CL001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_guard BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_guard_update();

CREATE FUNCTION books_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.code <> OLD.code OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'book %: code never changes', OLD.code USING ERRCODE = 'CL001';
    END IF;
    IF (NEW.head_seq, NEW.head_hash, NEW.head_recorded_at) IS DISTINCT FROM
       (OLD.head_seq, OLD.head_hash, OLD.head_recorded_at) AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'book %: the chain head moves only by writing an entry', OLD.code USING ERRCODE = 'CL001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER books_guard BEFORE UPDATE ON books
    FOR EACH ROW EXECUTE FUNCTION books_guard_update();

-- An entry extends its book's chain at the next position, from the current head hash, at a
-- recorded time taken from this transaction's clock and not before the previous entry's.
CREATE FUNCTION entries_before_insert() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    b books%ROWTYPE;
    target record;
BEGIN
    SELECT * INTO b FROM books WHERE id = NEW.book_id FOR UPDATE;
    IF NEW.seq <> b.head_seq + 1 OR NEW.prev_hash <> b.head_hash THEN
        RAISE EXCEPTION 'entry % does not extend the chain of book %: seq % after head %',
            NEW.id, b.code, NEW.seq, b.head_seq USING ERRCODE = 'CL003';
    END IF;
    IF NEW.recorded_at < now() OR NEW.recorded_at > clock_timestamp()
       OR NEW.recorded_at < b.head_recorded_at THEN
        RAISE EXCEPTION 'entry %: recorded_at % is not this transaction''s clock', NEW.id, NEW.recorded_at
            USING ERRCODE = 'CL006';
    END IF;
    IF NEW.reverts IS NOT NULL THEN
        SELECT kind, book_id INTO target FROM entries WHERE id = NEW.reverts;
        IF target.book_id IS DISTINCT FROM NEW.book_id OR target.kind IS DISTINCT FROM NEW.reverts_kind THEN
            RAISE EXCEPTION 'entry % reverts % of another book or kind', NEW.id, NEW.reverts USING ERRCODE = 'CL004';
        END IF;
    END IF;
    UPDATE books SET head_seq = NEW.seq, head_hash = NEW.hash, head_recorded_at = NEW.recorded_at
     WHERE id = NEW.book_id;
    RETURN NEW;
END $$;
CREATE TRIGGER entries_chain BEFORE INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_before_insert();

-- A posting belongs to an entry written in this very transaction and to an account of the
-- same book; it moves the cached balance (whose CHECK enforces the floor), and never draws
-- on a retired account.
CREATE FUNCTION postings_after_insert() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    e record;
    a record;
BEGIN
    SELECT book_id, xmin INTO e FROM entries WHERE id = NEW.entry_id;
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
    RETURN NULL;
END $$;
CREATE TRIGGER postings_apply AFTER INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_after_insert();

-- At commit: the entry's postings sum to zero and there are at least two of them (an amend
-- that changes only a schedule moves no tonnes and has none).
CREATE FUNCTION entries_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    s numeric;
BEGIN
    SELECT count(*), coalesce(sum(amount), 0) INTO n, s FROM postings WHERE entry_id = NEW.id;
    IF s <> 0 THEN
        RAISE EXCEPTION 'entry % does not balance: its postings sum to %', NEW.id, s USING ERRCODE = 'CL002';
    END IF;
    IF n < 2 AND NOT (n = 0 AND NEW.kind = 'amend') THEN
        RAISE EXCEPTION 'entry % has % posting(s); an entry needs at least two', NEW.id, n USING ERRCODE = 'CL002';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION entries_check_balanced();

-- Least privilege. The application writes as carbonledger_writer (INSERT and SELECT on the
-- journal, nothing else: balances and chain heads move through the SECURITY DEFINER triggers
-- above) and audits as carbonledger_reader (SELECT only). Roles are cluster-wide, so they are
-- created once and only when this user may create roles; without them the store runs as the
-- connecting user and the triggers still hold.
DO $$
BEGIN
    BEGIN
        CREATE ROLE carbonledger_writer NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE carbonledger_reader NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'carbonledger: no privilege to create roles; writes run as %', current_user;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO carbonledger_writer, carbonledger_reader', current_schema());
        GRANT SELECT ON books, accounts, entries, postings TO carbonledger_writer, carbonledger_reader;
        GRANT INSERT ON books, accounts, entries, postings TO carbonledger_writer;
        -- SELECT ... FOR UPDATE needs an UPDATE privilege; the guard triggers refuse any
        -- actual change made outside the journal's own triggers.
        GRANT UPDATE (head_seq) ON books TO carbonledger_writer;
        GRANT UPDATE (balance) ON accounts TO carbonledger_writer;
        BEGIN
            EXECUTE format('GRANT carbonledger_writer, carbonledger_reader TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN NULL;
        END;
    END IF;
END $$;
