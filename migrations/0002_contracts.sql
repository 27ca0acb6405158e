-- Offtake contracts, their delivery schedules, and the registry serial numbers delivered
-- under them.
--   * a contract's terms never change after signing (amendments are journal entries plus a new
--     schedule version), and each contract is one book: its entries form one hash chain;
--   * schedule versions are append-only;
--   * no two serial blocks of one registry series overlap (an exclusion constraint), so a serial
--     can be delivered once; a retired block never changes or disappears, so a retired serial
--     can never be delivered or retired again;
--   * every change of a block's state is an append-only serial event tied to its entry.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE contracts (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                    text NOT NULL,
    book_id                 bigint NOT NULL UNIQUE REFERENCES books (id),
    buyer                   text NOT NULL CHECK (buyer <> ''),
    supplier                text NOT NULL CHECK (supplier <> ''),
    project                 text NOT NULL CHECK (project <> ''),
    method                  text NOT NULL CHECK (method IN ('biochar', 'forestry', 'daccs', 'beccs',
                                                           'enhanced_weathering', 'ocean', 'other')),
    country                 text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    region                  text NOT NULL DEFAULT '',
    registry                text NOT NULL DEFAULT '',
    standard                text NOT NULL DEFAULT '',
    durability_years        integer CHECK (durability_years BETWEEN 1 AND 100000),
    durability_at_least     boolean NOT NULL DEFAULT false,
    term_start              date NOT NULL,
    term_end                date NOT NULL,
    signed_on               date NOT NULL,
    tonnes                  tonnes NOT NULL CHECK (tonnes > 0),
    price_per_tonne         numeric CHECK (price_per_tonne >= 0),
    currency                text NOT NULL DEFAULT '' CHECK (currency ~ '^([A-Z]{3})?$'),
    delivery_mode           text NOT NULL CHECK (delivery_mode IN ('transfer', 'retire_on_delivery')),
    over_delivery_tolerance tonnes NOT NULL DEFAULT 0 CHECK (over_delivery_tolerance >= 0),
    notes                   text NOT NULL DEFAULT '',
    -- the terms as signed, in the canonical JSON whose sha256 the sign entry carries
    terms                   jsonb NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contracts_code_key UNIQUE (code),
    CONSTRAINT contracts_term CHECK (term_end >= term_start),
    CONSTRAINT contracts_price_currency CHECK (price_per_tonne IS NULL OR currency <> '')
);

CREATE TABLE schedule_lines (
    contract_id     bigint NOT NULL REFERENCES contracts (id),
    version         integer NOT NULL CHECK (version >= 1),
    -- whether the user gave this schedule (false: the even split of the total)
    explicit        boolean NOT NULL,
    entry_id        uuid NOT NULL REFERENCES entries (id),
    year            integer NOT NULL CHECK (year >= 1),
    tonnes          tonnes NOT NULL CHECK (tonnes > 0),
    vintage         smallint CHECK (vintage BETWEEN 1990 AND 2200),
    price_per_tonne numeric CHECK (price_per_tonne >= 0),
    due_on          date,
    PRIMARY KEY (contract_id, version, year)
);

CREATE TRIGGER contracts_append_only BEFORE UPDATE OR DELETE ON contracts
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER contracts_no_truncate BEFORE TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER schedule_lines_append_only BEFORE UPDATE OR DELETE ON schedule_lines
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER schedule_lines_no_truncate BEFORE TRUNCATE ON schedule_lines
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- The current state of every serial ever delivered: a partition of each series into blocks.
CREATE TABLE serial_blocks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry    text NOT NULL CHECK (registry <> ''),
    prefix      text NOT NULL CHECK (prefix <> ''),
    serials     int8range NOT NULL CHECK (NOT isempty(serials) AND lower(serials) >= 0),
    contract_id bigint NOT NULL REFERENCES contracts (id),
    state       text NOT NULL CHECK (state IN ('delivered', 'retired', 'reversed')),
    entry_id    uuid NOT NULL REFERENCES entries (id),
    CONSTRAINT serial_blocks_no_overlap EXCLUDE USING gist (registry WITH =, prefix WITH =, serials WITH &&)
);
CREATE INDEX serial_blocks_contract ON serial_blocks (contract_id, state);

CREATE FUNCTION serial_blocks_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'retired' THEN
        RAISE EXCEPTION 'serials %:% are retired; a retired serial never changes again', OLD.prefix, OLD.serials
            USING ERRCODE = 'CL005';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.registry, NEW.prefix, NEW.contract_id) IS DISTINCT FROM (OLD.registry, OLD.prefix, OLD.contract_id) THEN
        RAISE EXCEPTION 'serial block %: registry, series and contract never change', OLD.id USING ERRCODE = 'CL001';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER serial_blocks_guard BEFORE UPDATE OR DELETE ON serial_blocks
    FOR EACH ROW EXECUTE FUNCTION serial_blocks_guard();
CREATE TRIGGER serial_blocks_no_truncate BEFORE TRUNCATE ON serial_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- The history of serial states, append-only: from_state NULL is a delivery, to_state NULL the
-- removal of a delivery by its correction.
CREATE TABLE serial_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id    uuid NOT NULL REFERENCES entries (id),
    contract_id bigint NOT NULL REFERENCES contracts (id),
    registry    text NOT NULL,
    prefix      text NOT NULL,
    serials     int8range NOT NULL,
    label       text NOT NULL DEFAULT '',
    from_state  text CHECK (from_state IN ('delivered', 'retired', 'reversed')),
    to_state    text CHECK (to_state IN ('delivered', 'retired', 'reversed')),
    CHECK (from_state IS NOT NULL OR to_state IS NOT NULL)
);
CREATE INDEX serial_events_entry ON serial_events (entry_id);
CREATE INDEX serial_events_series ON serial_events USING gist (registry, prefix, serials);
CREATE TRIGGER serial_events_append_only BEFORE UPDATE OR DELETE ON serial_events
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER serial_events_no_truncate BEFORE TRUNCATE ON serial_events
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT SELECT ON contracts, schedule_lines, serial_blocks, serial_events TO carbonledger_writer, carbonledger_reader;
        GRANT INSERT ON contracts, schedule_lines, serial_events TO carbonledger_writer;
        -- blocks split and change state as serials are retired; the guard keeps retired ones
        GRANT INSERT, UPDATE, DELETE ON serial_blocks TO carbonledger_writer;
    END IF;
END $$;
